import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { softmax, l2softmax, normface } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 8 fixtures are present, and each runs without error within its tolerances.
// With precision: on every backend, WebGPU included, each tensor's
// error stays within 5% of its tolerance (measured on WebGPU: below 0.002).
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 8, losses: [softmax, l2softmax, normface], backends, precision: 0.05 });
