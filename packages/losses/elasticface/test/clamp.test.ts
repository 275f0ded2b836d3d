import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Backend } from '@fr/core';
import { marginGradients } from '@fr/core/testing';
import { backends } from '@fr/test-kit';
import { elasticArcTransform } from '../src/index.js';

// The official code clamps the cosine to [-1, 1] before acos: torch.clamp stops the gradient beyond.
const above = Math.fround(1 + 2 ** -23);

describe.each(backends)('ElasticArcFace cosine clamp on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('a cosine beyond +-1 (by rounding) gets no gradient, target or not; the others do', async () => {
    // A cosine beyond +-1 as the target (rows 0 and 2) and as a non-target (row 1); the other
    // cosine of each row keeps the softmax away from saturation, so its gradient is visible.
    const g = await marginGradients(backend, {
      scores: [above, 0.85, above, 0.5, -above, -0.9], labels: [0, 1, 0], context: [0.5, 0.45, 0.55], cols: 2, transform: elasticArcTransform(64),
    });
    for (const i of [0, 2, 4]) expect(Math.abs(g[i]), `grad[${i}]`).toBe(0);
    for (const i of [1, 3, 5]) expect(Math.abs(g[i]), `grad[${i}]`).toBeGreaterThan(0.1);
  });
});
