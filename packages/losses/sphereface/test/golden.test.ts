import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { sphereface } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 4 fixtures are present, and each runs without error within its tolerances.
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 4, losses: [sphereface], backends });
