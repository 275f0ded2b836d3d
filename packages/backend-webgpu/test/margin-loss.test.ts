import { backward, clampedAcos, defineTransform, identityTransform, marginLoss, scaledTransform, tensor, tidy, type MarginTransform, type Reducer } from '@fr/core';
import { contextGradientTransform, gradCheck } from '@fr/core/testing';
import { describe, expect, it } from 'vitest';
import { marginLossSource } from '../src/index.js';
import { gpu, parity, randomF32, randomInt } from './helpers.js';

/** An ArcFace-like transform reading both row fields (`row.target` in TS, `row.target_z` in WGSL). */
const angular: MarginTransform = defineTransform({
  key: 'test-angular',
  uniforms: { s: 30, m: 0.5, c: 0.05 },
  target: (z, u, row) => u.s * Math.cos(clampedAcos(z) + u.m) + u.c * row.context,
  targetGrad: (_z, u) => u.s,
  other: (z, u, row) => (z > row.target ? u.s * (z + 0.1) : u.s * z),
  otherGrad: (z, u, row) => (z > row.target ? 1.5 * u.s : u.s),
  wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  return u.s * cos(acos(clamp(z, -1.0 + 1e-5, 1.0 - 1e-5)) + u.m) + u.c * row.context;
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { if (z > row.target_z) { return u.s * (z + 0.1); } return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { if (z > row.target_z) { return 1.5 * u.s; } return u.s; }
`,
});

interface LossCase {
  rows: number;
  cols: number;
  transform: MarginTransform;
  reducer: Reducer;
  classOffset?: number;
  numClasses?: number;
  context?: boolean;
  bias?: number;
  positiveWeight?: number;
  negativeWeight?: number;
  scale?: number;
  seed?: number;
  /** Also write per-row LSE and normalise with a given global LSE (sharded softmax). */
  lse?: boolean;
  /** Also write the per-row context gradient (needs `context` and a contextGradient transform). */
  contextGrad?: boolean;
}

function lossCase(c: LossCase) {
  const { rows, cols } = c;
  const seed = c.seed ?? 1;
  const buffers: Record<string, Float32Array | Int32Array> = {
    z: randomF32(seed, rows * cols, -1, 1),
    labels: randomInt(seed + 1, rows, c.numClasses ?? cols),
    grad: new Float32Array(rows * cols),
    rowLoss: new Float32Array(rows),
    rowLogitGrad: new Float32Array(rows),
  };
  if (c.context) buffers.ctx = c.contextGrad ? randomF32(seed + 2, rows, -1.5, 1.5) : randomF32(seed + 2, rows, 5, 30);
  if (c.contextGrad) buffers.ctxGrad = new Float32Array(rows);
  if (c.bias !== undefined) buffers.bias = Float32Array.of(c.bias);
  if (c.lse) {
    buffers.rowLse = new Float32Array(rows);
    buffers.glse = randomF32(seed + 3, rows, 20, 40);
  }
  return {
    buffers,
    compare: ['grad', 'rowLoss', 'rowLogitGrad', ...(c.lse ? ['rowLse'] : []), ...(c.contextGrad ? ['ctxGrad'] : [])],
    call: <B>(k: import('@fr/core').KernelTable<B>, b: Record<string, B>) =>
      k.marginLoss({
        logits: b.z, labels: b.labels, grad: b.grad, rowLoss: b.rowLoss, rowLogitGrad: b.rowLogitGrad,
        rowContext: c.context ? b.ctx : null,
        rowContextGrad: c.contextGrad ? b.ctxGrad : null,
        bias: c.bias !== undefined ? b.bias : null,
        rowLogSumExp: c.lse ? b.rowLse : null,
        globalLogSumExp: c.lse ? b.glse : null,
        rows, cols,
        classOffset: c.classOffset ?? 0,
        transform: c.transform,
        reducer: c.reducer,
        positiveWeight: c.positiveWeight ?? 1,
        negativeWeight: c.negativeWeight ?? 1,
        scale: c.scale ?? 1 / rows,
      }),
  };
}

const TOL = { atol: 2e-5, rtol: 1e-4 };

describe('fused marginLoss matches the CPU backend', () => {
  it('softmax-ce, identity and scaled transforms, C from 1 to 3000 (more than a workgroup)', async () => {
    for (const [rows, cols] of [[1, 1], [1, 300], [5, 3000], [3, 257]]) {
      await parity(lossCase({ rows, cols, transform: identityTransform, reducer: 'softmax-ce' }), TOL, `identity ${rows}x${cols}`);
      await parity(lossCase({ rows, cols, transform: scaledTransform(64), reducer: 'softmax-ce', seed: 3 }), { atol: 1e-4, rtol: 2e-4 }, `scaled ${rows}x${cols}`);
    }
  });

  it('softmax-ce with a custom transform reading row.target and row.context', async () => {
    await parity(lossCase({ rows: 6, cols: 3000, transform: angular, reducer: 'softmax-ce', context: true, scale: 0.5 }), { atol: 1e-4, rtol: 2e-4 }, 'angular');
  });

  it('a sharded head: labels outside [classOffset, classOffset + cols) are non-targets', async () => {
    // Classes 1000..1999 of 3000: most rows have their target in another shard (row.target NaN).
    const c = lossCase({ rows: 12, cols: 1000, transform: angular, reducer: 'softmax-ce', classOffset: 1000, numClasses: 3000, context: true });
    const got = await parity(c, { atol: 1e-4, rtol: 2e-4 }, 'shard');
    expect(got.rowLoss.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('sharded softmax: per-row LSE out, global LSE in (loss only where the target lives)', async () => {
    const c = lossCase({ rows: 9, cols: 700, transform: angular, reducer: 'softmax-ce', classOffset: 700, numClasses: 2100, context: true, bias: 0.5, lse: true });
    const got = await parity(c, { atol: 1e-4, rtol: 2e-4 }, 'global lse');
    const labels = c.buffers.labels as Int32Array;
    labels.forEach((y, r) => {
      if (y < 700 || y >= 1400) expect(got.rowLoss[r]).toBe(0);
    });
  });

  it('sigmoid-ova with bias, weights and scale', async () => {
    for (const [rows, cols] of [[1, 1], [4, 3000]]) {
      await parity(lossCase({
        rows, cols, transform: scaledTransform(40), reducer: 'sigmoid-ova', bias: -6.5, positiveWeight: 0.7 * 50, negativeWeight: 0.3 * 50, scale: 0.25, seed: 9,
      }), { atol: 1e-4, rtol: 2e-4 }, `sigmoid-ova ${rows}x${cols}`);
    }
    await parity(lossCase({ rows: 3, cols: 777, transform: angular, reducer: 'sigmoid-ova', bias: 1.25, context: true, seed: 11 }),
      { atol: 1e-4, rtol: 2e-4 }, 'sigmoid-ova angular');
  });

  it('C = 100,003 columns in one row pass (online softmax)', async () => {
    await parity(lossCase({ rows: 2, cols: 100_003, transform: scaledTransform(64), reducer: 'softmax-ce', seed: 21 }), { atol: 1e-5, rtol: 2e-4 }, 'C=100003');
  });

  it('rowContextGrad: both reducers, wide rows, sharded with a global LSE, and not asked for', async () => {
    const tol = { atol: 1e-4, rtol: 5e-4 };
    for (const reducer of ['softmax-ce', 'sigmoid-ova'] as const) {
      for (const [rows, cols] of [[1, 1], [5, 3000]]) {
        const got = await parity(lossCase({ rows, cols, transform: contextGradientTransform, reducer, context: true, contextGrad: true, seed: 31 }), tol, `${reducer} ${rows}x${cols}`);
        // One softmax column has dL/dlogit = 0; elsewhere the context gradient is not trivially zero.
        if (cols > 1) expect(got.ctxGrad.some((v) => v !== 0)).toBe(true);
      }
    }
    await parity(lossCase({ rows: 7, cols: 600, transform: contextGradientTransform, reducer: 'softmax-ce', classOffset: 600, numClasses: 1800, context: true, contextGrad: true, lse: true, bias: 0.25 }), tol, 'sharded');
    // The transform's shader has the extra binding; without the output it writes to scratch.
    await parity(lossCase({ rows: 3, cols: 40, transform: contextGradientTransform, reducer: 'softmax-ce', context: true, lse: true }), tol, 'unasked');
  });

  it('the marginLoss op passes a gradient to a row context: finite differences on WebGPU', async () => {
    const backend = await gpu();
    const labels = tensor(backend, Int32Array.from([1, 0, 3]), [3], { dtype: 'int32' });
    const z = { shape: [3, 4], data: randomF32(41, 12, -0.8, 0.8) };
    const ctx = { shape: [3], data: randomF32(42, 3, -1, 1) };
    const r = await gradCheck(backend, ([zt, ct]) => marginLoss(zt, labels, { transform: contextGradientTransform, reducer: 'softmax-ce', scale: 1 / 3, rowContext: ct }),
      [z, ctx], { eps: 1e-2, rtol: 2e-2, atol: 2e-3 });
    for (const i of r.inputs) expect(i.maxError, JSON.stringify(i)).toBeLessThanOrEqual(i.allowed);
    // And the same gradient as the CPU reference.
    const cpuGrad = await (async () => {
      const { createCpuBackend } = await import('@fr/backend-cpu');
      const cpu = createCpuBackend();
      const c = tensor(cpu, ctx.data, [3], { requiresGrad: true });
      tidy(() => {
        const l = marginLoss(tensor(cpu, z.data, [3, 4]), tensor(cpu, Int32Array.from([1, 0, 3]), [3], { dtype: 'int32' }),
          { transform: contextGradientTransform, reducer: 'softmax-ce', scale: 1 / 3, rowContext: c });
        backward(l);
        return l;
      }).dispose();
      return c.grad!.data();
    })();
    const c = tensor(backend, ctx.data, [3], { requiresGrad: true });
    tidy(() => {
      const l = marginLoss(tensor(backend, z.data, [3, 4]), labels, { transform: contextGradientTransform, reducer: 'softmax-ce', scale: 1 / 3, rowContext: c });
      backward(l);
      return l;
    }).dispose();
    const got = await c.grad!.data();
    // f32 acos/sin on the GPU: the same relative tolerance as the golden files.
    got.forEach((v, i) => expect(Math.abs(v - cpuGrad[i])).toBeLessThanOrEqual(1e-5 + 5e-4 * Math.abs(cpuGrad[i])));
    c.dispose();
    labels.dispose();
  });

  it('one pipeline per (reducer, transform key); new uniform values reuse it', async () => {
    const backend = await gpu();
    await parity(lossCase({ rows: 2, cols: 50, transform: scaledTransform(10), reducer: 'softmax-ce' }), TOL, 's=10');
    const before = backend.stats().pipelines;
    await parity(lossCase({ rows: 2, cols: 50, transform: scaledTransform(20), reducer: 'softmax-ce' }), TOL, 's=20');
    expect(backend.stats().pipelines).toBe(before);
  });

  it('declares FrRow { target_z, context } and inserts the snippet verbatim', () => {
    const src = marginLossSource(angular, 'softmax-ce', 64);
    expect(src).toMatch(/struct FrRow \{\s*target_z: f32,\s*context: f32,/);
    expect(src).toContain(angular.wgsl);
  });
});
