import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { x2softmax } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 3 fixtures are present, and each runs without error within its tolerances.
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 3, losses: [x2softmax], backends });
