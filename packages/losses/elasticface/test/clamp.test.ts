import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Backend } from '@fr/core';
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
    const k = backend.kernels;
    const upload = (data: Float32Array | Int32Array) => {
      const buf = backend.alloc(data.length, data instanceof Int32Array ? 'int32' : 'float32');
      backend.write(buf, data);
      return buf;
    };
    // A cosine beyond +-1 as the target (rows 0 and 2) and as a non-target (row 1); the other
    // cosine of each row keeps the softmax away from saturation, so its gradient is visible.
    const logits = upload(Float32Array.of(above, 0.85, above, 0.5, -above, -0.9));
    const labels = upload(Int32Array.of(0, 1, 0));
    const margins = upload(Float32Array.of(0.5, 0.45, 0.55));
    const [grad, rowLoss, rowLogitGrad] = [6, 3, 3].map((n) => backend.alloc(n, 'float32'));
    k.marginLoss({
      logits, labels, grad, rowLoss, rowLogitGrad, rowContext: margins, bias: null, rows: 3, cols: 2, classOffset: 0,
      transform: elasticArcTransform(64), reducer: 'softmax-ce', positiveWeight: 1, negativeWeight: 1, scale: 1 / 3,
    });
    const g = await backend.read(grad, 'float32', 6);
    for (const i of [0, 2, 4]) expect(Math.abs(g[i]), `grad[${i}]`).toBe(0);
    for (const i of [1, 3, 5]) expect(Math.abs(g[i]), `grad[${i}]`).toBeGreaterThan(0.1);
    for (const buf of [logits, labels, margins, grad, rowLoss, rowLogitGrad]) backend.free(buf);
  });
});
