import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { curricularface } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 2 fixtures (the official code's numbers, golden/losses) are present, and each runs without error within its tolerances.
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 2, losses: [curricularface], backends });
