import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Backend } from '@fr/core';
import { marginGradients } from '@fr/core/testing';
import { backends } from '@fr/test-kit';
import { curricularTransform } from '../src/index.js';

// The official head clamps every cosine to [-1, 1]: torch.clamp stops the gradient beyond.
const above = Math.fround(1 + 2 ** -23);

describe.each(backends)('CurricularFace cosine clamp on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('a cosine beyond +-1 (by rounding) gets no gradient, target, hard negative or not; the others do', async () => {
    // Rows 0 and 2: the target beyond +-1; row 1: a hard negative beyond 1 (t = 0.3 as the row context).
    const g = await marginGradients(backend, {
      scores: [above, 0.85, above, 0.5, -above, -0.9], labels: [0, 1, 0], context: [0.3, 0.3, 0.3], cols: 2, transform: curricularTransform(64, 0.5),
    });
    for (const i of [0, 2, 4]) expect(Math.abs(g[i]), `grad[${i}]`).toBe(0);
    for (const i of [1, 3, 5]) expect(Math.abs(g[i]), `grad[${i}]`).toBeGreaterThan(0.1);
  });
});
