import * as vitest from 'vitest';
import { describeGoldenPrecision } from '@fr/core/testing';
import { backends, lossFixtures } from '@fr/test-kit';
import { sphereface } from '../src/index.js';

// The golden cases (copied from the golden set): on every backend, WebGPU included, each tensor's
// error stays within 5% of its tolerance. On WebGPU the loss was at 0.12 with WGSL's acos and cos;
// with core's fr_acos and fr_sin_cos every tensor is below 0.002.
describeGoldenPrecision(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 4, losses: [sphereface], backends });
