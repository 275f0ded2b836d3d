import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRng, parseLossParams, ConfigError, type Backend } from '@fr/core';
import { lossGradCheck } from '@fr/core/testing';
import { multiface } from '../src/index.js';
import { backends } from '@fr/test-kit';

test('defaults of the MultiFace README', () => {
  expect(parseLossParams(multiface, {})).toEqual({ parts: 2, base: 'arcface', s: 64, m: 0.3 });
});

describe.each(backends)('multiface on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test.each([
    ['softmax', 4],
    ['cosface', 2],
    ['arcface', 3],
  ] as const)('base %s, %i parts: gradients agree with finite differences', async (base, parts) => {
    const r = await lossGradCheck(multiface, { backend, params: { base, parts, s: 6 }, batch: 3, dim: 12, classes: 4, seed: 5 });
    for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
  });

  test('a dimension that does not split evenly is a ConfigError', () => {
    const params = parseLossParams(multiface, { parts: 5 });
    expect(() => multiface.createHead({ backend, numClasses: 3, embeddingDim: 12, params, rng: createRng(1) })).toThrow(ConfigError);
    expect(() => multiface.createHead({ backend, numClasses: 3, embeddingDim: 12, params, rng: createRng(1) })).toThrow(/dimension 12 cannot be cut into 5 equal slices/);
  });
});
