import * as vitest from 'vitest';
import { describeGoldenPrecision } from '@fr/core/testing';
import { backends, lossFixtures } from '@fr/test-kit';
import { sphereface2 } from '../src/index.js';

// The golden cases (copied from the golden set): on every backend, WebGPU included, each tensor's
// error stays within 1% of its tolerance (5% elsewhere). On WebGPU the A and M losses were at 0.014
// with WGSL's acos and cos, which 5% would let through; with core's fr_acos and fr_sin_cos every
// tensor is below 0.003 on each backend.
describeGoldenPrecision(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 12, losses: [sphereface2], backends, fraction: 0.01 });
