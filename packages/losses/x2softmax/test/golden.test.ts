import * as vitest from 'vitest';
import { describeGoldenCases } from '@fr/core/testing';
import { x2softmax } from '../src/index.js';
import { backends, fixtures } from './backends.js';

// Per backend: all 3 fixtures are present, and each runs without error within its tolerances.
describeGoldenCases(vitest, { cases: fixtures(), count: 3, losses: [x2softmax], backends });
