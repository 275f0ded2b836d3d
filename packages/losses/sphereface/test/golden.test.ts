import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { sphereface } from '../src/index.js';
import { backends, fixtures } from './backends.js';

// Per backend: all 4 fixtures are present, and each runs without error within its tolerances.
describeGoldenCases(vitest, { cases: fixtures(), count: 4, losses: [sphereface], backends });
