import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { sphereface2 } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 12 fixtures are present, and each runs without error within its tolerances.
// With precision: on every backend, WebGPU included, each tensor's
// error stays within 1% of its tolerance (5% elsewhere). On WebGPU the A and M losses were at 0.014
// with WGSL's acos and cos, which 5% would let through; with core's fr_acos and fr_sin_cos every
// tensor is below 0.003 on each backend.
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 12, losses: [sphereface2], backends, precision: 0.01 });
