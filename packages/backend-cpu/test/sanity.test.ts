import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { backward, clampedAcos, defineTransform, l2normalize, marginLoss, matmul, tensor, tidy, THETA_MAX } from '@fr/core';
import { createCpuBackend } from '../src/index.js';

test('arcface golden', async () => {
  const d = JSON.parse(readFileSync('/work/shared/golden/losses/arcface-small.json', 'utf8'));
  const be = createCpuBackend();
  const { batch: B, dim: D, classes: C } = d.shape;
  const x = tensor(be, d.inputs.embeddings, [B, D], { requiresGrad: true });
  const w = tensor(be, d.inputs.weights, [C, D], { requiresGrad: true });
  const y = tensor(be, Int32Array.from(d.inputs.labels), [B]);
  const t = defineTransform({
    key: 'arc', uniforms: { s: 64, m: 0.5 },
    target: (z, u) => u.s * Math.cos(Math.min(Math.max(clampedAcos(z) + u.m, 1e-5), THETA_MAX)),
    targetGrad: (_z, u) => u.s, other: (z, u) => u.s * z, otherGrad: (_z, u) => u.s, wgsl: '',
  });
  const loss = tidy(() => {
    const cos = matmul(l2normalize(x), l2normalize(w), { transB: true });
    const loss = marginLoss(cos, y, { transform: t, reducer: 'softmax-ce', scale: 1 / B });
    backward(loss);
    return loss;
  });
  const l = await loss.item();
  expect(l).toBeCloseTo(d.expected.loss, 3);
  const gx = await x.grad!.data();
  const gw = await w.grad!.data();
  const err = (a: ArrayLike<number>, b: number[]) => Math.max(...b.map((v, i) => Math.abs(a[i] - v)));
  console.log(l, d.expected.loss, err(gx, d.expected.gradEmbeddings), err(gw, d.expected.gradWeights));
  expect(err(gx, d.expected.gradEmbeddings)).toBeLessThan(1e-3);
  expect(err(gw, d.expected.gradWeights)).toBeLessThan(1e-3);
});
