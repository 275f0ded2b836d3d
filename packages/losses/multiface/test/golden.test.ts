import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { multiface } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 6 fixtures are present, and each runs without error within its tolerances.
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 6, losses: [multiface], backends });
