import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, tensor, tidy, type Backend } from '@fr/core';
import { lossGradCheck } from '@fr/core/testing';
import { cosface, cosfaceTransform } from '../src/index.js';
import { backends } from '@fr/test-kit';

test('transform: s (cos - m) for the target, s cos otherwise, slope s', () => {
  const t = cosfaceTransform({ s: 64, m: 0.35 });
  const row = { target: 0, context: 0 };
  expect(t.target(1, t.uniforms, row)).toBeCloseTo(64 * 0.65, 12);
  expect(t.other(-1, t.uniforms, row)).toBe(-64);
  expect(t.targetGrad(0.3, t.uniforms, row)).toBe(64);
});

describe.each(backends)('cosface on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('gradients agree with finite differences (the margin is a constant shift)', async () => {
    const r = await lossGradCheck(cosface, { backend, params: { s: 8 }, batch: 3, dim: 5, classes: 4, seed: 2 });
    for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
  });

  test('cos = +1 and -1 give the closed-form loss', async () => {
    // Two classes e0, e1; x = e0 with label 0 (cos +1 / -1... ) and x = -e0 with label 0.
    const head = cosface.createHead({ backend, numClasses: 2, embeddingDim: 2, params: { s: 64, m: 0.35 }, rng: createRng(1) });
    backend.write(head.parameters[0].tensor.buffer(), Float32Array.from([1, 0, 0, 1]));
    const x = tensor(backend, [3, 0, -3, 0], [2, 2], { requiresGrad: true });
    const l = tidy(() => {
      const l = head.forward(x, Int32Array.from([0, 0]));
      backward(l);
      return l;
    });
    // Row 0: logits [64 * 0.65, 0]; row 1: [64 * (-1.35), 0].
    const ce = (zy: number) => Math.log(Math.exp(zy) + 1) - zy;
    expect(await l.item()).toBeCloseTo((ce(64 * 0.65) + ce(-64 * 1.35)) / 2, 4);
    expect(Array.from(await x.grad!.data()).every(Number.isFinite)).toBe(true);
    head.dispose();
  });
});
