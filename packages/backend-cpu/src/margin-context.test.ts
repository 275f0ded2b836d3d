import { describe, expect, test } from 'vitest';
import { backward, defineTransform, marginLoss, scaledTransform, ShapeError, tensor, tidy, type Reducer } from '@fr/core';
import { contextGradientTransform, gradCheck, type GradCheckInput } from '@fr/core/testing';
import { createCpuBackend } from './index.js';

const backend = createCpuBackend();

function uniform(n: number, seed: number, lo: number, hi: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return lo + ((hi - lo) * s) / 2147483648;
  });
}

describe('marginLoss differentiates a row context through the transform', () => {
  for (const reducer of ['softmax-ce', 'sigmoid-ova'] as Reducer[]) {
    test(`${reducer}: gradients of scores and context match central differences`, async () => {
      const [rows, cols] = [4, 6];
      const labels = tensor(backend, Int32Array.from([0, 5, 2, 2]), [rows], { dtype: 'int32' });
      const z: GradCheckInput = { shape: [rows, cols], data: uniform(rows * cols, 3, -0.9, 0.9) };
      const ctx: GradCheckInput = { shape: [rows], data: uniform(rows, 5, -1.5, 1.5) };
      const r = await gradCheck(backend, ([zt, ct]) => marginLoss(zt, labels, {
        transform: contextGradientTransform, reducer, scale: 1 / rows, rowContext: ct, positiveWeight: 0.7, negativeWeight: 0.3,
      }), [z, ctx], { rtol: 1e-2, atol: 1e-3 });
      for (const i of r.inputs) expect(i.maxError, JSON.stringify(i)).toBeLessThanOrEqual(i.allowed);
      expect(r.passed).toBe(true);
      // The context gradient is not trivially zero.
      expect(Math.abs(r.inputs[1].analytic) + Math.abs(r.inputs[1].numeric)).toBeGreaterThan(0);
      labels.dispose();
    });
  }

  test('the context gradient equals sum_j dL/dlogit_j * dlogit_j/dc, computed by hand', async () => {
    const s = 16, m = 0.3, q = 0.5;
    const zs = [0.2, -0.4, 0.7];
    const c = 0.8;
    const z = tensor(backend, zs, [1, 3]);
    const ctx = tensor(backend, [c], [1], { requiresGrad: true });
    const labels = tensor(backend, Int32Array.of(2), [1], { dtype: 'int32' });
    tidy(() => {
      const l = marginLoss(z, labels, { transform: contextGradientTransform, reducer: 'softmax-ce', scale: 1, rowContext: ctx });
      backward(l);
      return l;
    }).dispose();
    const logits = zs.map((v, j) => (j === 2 ? s * Math.cos(Math.acos(v) + m * c) : s * v + q * c * v * v));
    const dlogit = zs.map((v, j) => (j === 2 ? -s * m * Math.sin(Math.acos(v) + m * c) : q * v * v));
    const mx = Math.max(...logits);
    const sum = logits.reduce((a, l) => a + Math.exp(l - mx), 0);
    const want = logits.reduce((a, l, j) => a + (Math.exp(l - mx) / sum - (j === 2 ? 1 : 0)) * dlogit[j], 0);
    expect((await ctx.grad!.data())[0]).toBeCloseTo(want, 4);
  });

  test('a context that requires a gradient the transform cannot give is refused', () => {
    const z = tensor(backend, [0.1, 0.2], [1, 2]);
    const labels = tensor(backend, Int32Array.of(0), [1], { dtype: 'int32' });
    const ctx = tensor(backend, [1], [1], { requiresGrad: true });
    expect(() => marginLoss(z, labels, { transform: scaledTransform(2), reducer: 'softmax-ce', scale: 1, rowContext: ctx }))
      .toThrow(ShapeError);
    expect(() => marginLoss(z, labels, { transform: scaledTransform(2), reducer: 'softmax-ce', scale: 1, rowContext: ctx }))
      .toThrow(/has no contextGradient/);
  });

  test('defineTransform checks that a contextGradient transform defines its derivatives in TS and WGSL', () => {
    const base = { key: 'bad', uniforms: {}, target: (z: number) => z, targetGrad: () => 1, other: (z: number) => z, otherGrad: () => 1, contextGradient: true };
    expect(() => defineTransform({ ...base, wgsl: '' })).toThrow(/needs targetContextGrad and otherContextGrad/);
    expect(() => defineTransform({ ...base, targetContextGrad: () => 0, otherContextGrad: () => 0, wgsl: 'fn fr_target_context_grad(z: f32, row: FrRow) -> f32 { return 0.0; }' }))
      .toThrow(/fn fr_other_context_grad/);
  });
});
