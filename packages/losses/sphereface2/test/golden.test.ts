import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { sphereface2 } from '../src/index.js';
import { backends, lossFixtures } from '@fr/test-kit';

// Per backend: all 12 fixtures are present, and each runs without error within its tolerances.
describeGoldenCases(vitest, { cases: lossFixtures(new URL('./fixtures/', import.meta.url)), count: 12, losses: [sphereface2], backends });
