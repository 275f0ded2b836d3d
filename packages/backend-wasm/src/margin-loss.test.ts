import { createCpuBackend } from '@fr/backend-cpu';
import { arcMarginTransform, createRng, defineTransform, identityTransform, scaledTransform, type Backend, type MarginLossParams, type MarginTransform } from '@fr/core';
import { expectClose } from '@fr/core/testing';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createWasmBackend } from './index.js';
import { float32Bounds } from './linear-other.js';

let one: Backend;
let two: Backend;
let three: Backend;
const reference = createCpuBackend();
beforeAll(async () => {
  [one, two, three] = await Promise.all([1, 2, 3].map((threads) => createWasmBackend({ threads })));
});
afterAll(() => {
  for (const b of [one, two, three, reference]) b.dispose();
});

// A margin whose target reads the row context, and whose non-target slope is 0 outside [lo, hi]
// (AdaFace's and MultiFace's exact clamp): the declaration's slopeOutside.
const contextMargin = defineTransform({
  key: 'test-context-margin',
  uniforms: { s: 16, lo: -0.9, hi: 0.95 },
  target: (z, u, row) => u.s * (Math.cos(Math.acos(Math.min(Math.max(z, -1), 1)) + 0.2 * row.context) - 0.1),
  targetGrad: (z, u, row) => u.s * (1 + 0.1 * row.context),
  other: (z, u) => u.s * Math.min(Math.max(z, u.lo), u.hi),
  otherGrad: (z, u) => (z < u.lo || z > u.hi ? 0 : u.s),
  otherLinear: { scale: 16, lo: -0.9, hi: 0.95, slope: 16, slopeOutside: 0 },
  wgsl: '',
});

const TRANSFORMS: MarginTransform[] = [
  arcMarginTransform(64, 0.5, 'detached'), arcMarginTransform(64, 0.5, 'exact'), scaledTransform(30), identityTransform, contextMargin,
];

interface Case {
  rows: number;
  cols: number;
  classOffset?: number;
  bias?: number;
  withLse?: boolean;
  global?: boolean;
}

/** Runs marginLoss on `b`; returns grad, rowLoss, rowLogitGrad (and rowLogSumExp). */
async function run(b: Backend, t: MarginTransform, c: Case, seed: number): Promise<Float32Array[]> {
  const rng = createRng(seed);
  const { rows, cols } = c;
  const z = Float32Array.from({ length: rows * cols }, () => 2.2 * rng.uniform() - 1.1);
  // Labels at the row edges and outside this buffer's classes too.
  const labels = Int32Array.from({ length: rows }, (_, r) => (r % 4 === 0 ? 0 : r % 4 === 1 ? cols - 1 : r % 4 === 2 ? cols + 5 : rng.int(cols)) + (c.classOffset ?? 0));
  const upload = (x: Float32Array | Int32Array, dtype: 'float32' | 'int32') => {
    const buf = b.alloc(x.length, dtype);
    b.write(buf, x);
    return buf;
  };
  const bufs = {
    logits: upload(z, 'float32'), labels: upload(labels, 'int32'), grad: upload(new Float32Array(rows * cols).fill(NaN), 'float32'),
    rowLoss: upload(new Float32Array(rows), 'float32'), rowLogitGrad: upload(new Float32Array(rows), 'float32'),
    rowContext: upload(Float32Array.from({ length: rows }, () => rng.normal()), 'float32'),
    bias: c.bias === undefined ? null : upload(Float32Array.of(c.bias), 'float32'),
    rowLogSumExp: c.withLse ? upload(new Float32Array(rows), 'float32') : null,
    globalLogSumExp: c.global ? upload(Float32Array.from({ length: rows }, () => 40 + 10 * rng.uniform()), 'float32') : null,
  };
  const p: MarginLossParams<unknown> = {
    ...bufs, rows, cols, classOffset: c.classOffset ?? 0, transform: t, reducer: 'softmax-ce', positiveWeight: 1, negativeWeight: 1, scale: 1 / rows,
  };
  b.kernels.marginLoss(p);
  const outs: [unknown, number][] = [[bufs.grad, rows * cols], [bufs.rowLoss, rows], [bufs.rowLogitGrad, rows], ...(bufs.rowLogSumExp ? [[bufs.rowLogSumExp, rows] as [unknown, number]] : [])];
  const parts = await Promise.all(outs.map(([o, n]) => b.read(o, 'float32', n)));
  for (const x of Object.values(bufs)) if (x) b.free(x);
  return parts as Float32Array[];
}

const CASES: [string, Case][] = [
  ['128x10000, the ArcFace head shape', { rows: 128, cols: 10_000 }],
  ['7x1031 with bias and row log-sum-exp', { rows: 7, cols: 1031, bias: -3, withLse: true }],
  ['64x2051 shard at class 100 with a global log-sum-exp', { rows: 64, cols: 2051, classOffset: 100, global: true }],
  ['5x3 and a single column', { rows: 5, cols: 3 }],
  ['9x1', { rows: 9, cols: 1 }],
];

describe('marginLoss (softmax-ce over otherLinear) on SIMD', () => {
  for (const t of TRANSFORMS) {
    for (const [name, c] of CASES) {
      test(`${t.key}: ${name}: same bits at 1, 2 and 3 threads, close to the TypeScript reference`, async () => {
        const [a, b2, b3, want] = await Promise.all([one, two, three, reference].map((b) => run(b, t, c, 11)));
        const names = ['grad', 'rowLoss', 'rowLogitGrad', 'rowLogSumExp'];
        a.forEach((got, i) => {
          expect(Buffer.from(b2[i].buffer).equals(Buffer.from(got.buffer))).toBe(true);
          expect(Buffer.from(b3[i].buffer).equals(Buffer.from(got.buffer))).toBe(true);
          // Float32 scores scaled and exponentiated in float32: a few ulp of the largest logit.
          expectClose(got, want[i], { rtol: 1e-5, atol: 1e-7 }, `${t.key} ${name}: ${names[i]}`);
        });
      });
    }
  }

  test('a declaration that disagrees with other/otherGrad is refused, naming the transform and the score', async () => {
    const lying = defineTransform({ ...scaledTransform(30), key: 'lying', otherLinear: { scale: 30, lo: -1, hi: 1, slope: 30, slopeOutside: 30 } });
    await expect(run(one, lying, { rows: 2, cols: 8 }, 3)).rejects.toThrow(/transform lying: otherLinear .* disagrees with other\/otherGrad at z = -2 .*they give -60 .* the declaration -30/);
  });

  test('float32 bounds keep the reference comparisons of float32 scores', () => {
    const [lo, hi] = float32Bounds(-1 + 1e-5, 1 - 1e-5);
    expect(lo).toBeGreaterThanOrEqual(-1 + 1e-5);
    expect(Math.fround(lo)).toBe(lo);
    expect(hi).toBeLessThanOrEqual(1 - 1e-5);
    expect(Math.fround(hi)).toBe(hi);
    // The next float32 outward fails the comparison.
    expect(new Float32Array([lo - 1e-7])[0]).toBeLessThan(-1 + 1e-5);
  });
});
