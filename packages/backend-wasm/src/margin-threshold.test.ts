import {
  clampUnit, cosPlus, createRng, defineTransform, thMm, thMmSlope, thMmUniforms, type Backend, type MarginTransform, type RowContext, type Uniforms,
} from '@fr/core';
import { expectClose } from '@fr/core/testing';
import { describe, expect, test } from 'vitest';
import { runMarginLoss, suiteBackends, type MarginCase } from '../test/margin-loss-kit.js';
import { float32AtOrBelow } from './threshold-other.js';

const backends = suiteBackends();

/** Non-target logits of the threshold form with `threshold` and `>` (or `>=`, the wrong mask), the declaration as given. */
function thresholdMargin(key: string, s: number, threshold: (u: Uniforms, row: RowContext) => number, declared = threshold, inclusive = false): MarginTransform {
  const hard = (z: number, u: Uniforms, row: RowContext) => (inclusive ? clampUnit(z) >= threshold(u, row) : clampUnit(z) > threshold(u, row));
  return defineTransform({
    key,
    uniforms: { s, ...thMmUniforms(0.5) },
    target: (z, u) => u.s * thMm(z, u),
    targetGrad: (z, u) => (Math.abs(z) > 1 ? 0 : u.s * thMmSlope(z, u)),
    other: (z, u, row) => u.s * (hard(z, u, row) ? clampUnit(z) * (row.context + clampUnit(z)) : clampUnit(z)),
    otherGrad: (z, u, row) => (Math.abs(z) > 1 ? 0 : u.s * (hard(z, u, row) ? row.context + 2 * z : 1)),
    otherThreshold: { scale: s, lo: -1, hi: 1, slope: s, slopeOutside: 0, threshold: declared },
    wgsl: '',
  });
}

// CurricularFace's shape: hard above cos(theta_y + m) of the row's target score.
const hardNegative = thresholdMargin('test-hard-negative', 64, (u, row) => cosPlus(clampUnit(row.target), u.cos_m, u.sin_m));
// A threshold that is a float32 itself (the target score): scores land exactly on it.
const atTarget = thresholdMargin('test-at-target', 16, (_u, row) => row.target);

/** The float32 next to float32 x, up (d = 1) or down (-1). */
function step(x: number, d: 1 | -1): number {
  const f = new Float32Array([x]), i = new Int32Array(f.buffer);
  i[0] += (x > 0) === (d > 0) ? 1 : -1;
  return f[0];
}

interface Case extends MarginCase {
  /** A global log-sum-exp per row, at least every logit of the row (s (c (t + c)) reaches 64 * 2.2 here). */
  global?: boolean;
  /** No row context buffer: the context is 0. */
  noContext?: boolean;
  /** Scores of row r (default: uniform in [-1.1, 1.1]). */
  scores?: (r: number, cols: number, rng: ReturnType<typeof createRng>) => number[];
  labels?: (r: number) => number;
}

/** Runs marginLoss on `b`; returns grad, rowLoss, rowLogitGrad (then rowLogSumExp when asked for), and the scores. */
async function run(b: Backend, t: MarginTransform, c: Case, seed: number): Promise<{ outs: Float32Array[]; z: Float32Array; labels: Int32Array; context: Float32Array }> {
  const rng = createRng(seed);
  const { rows, cols } = c;
  const z = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) z.set(c.scores ? c.scores(r, cols, rng) : Array.from({ length: cols }, () => 2.2 * rng.uniform() - 1.1), r * cols);
  // Labels at the row edges and outside this buffer's classes too.
  const labels = Int32Array.from({ length: rows }, (_, r) => (c.labels ? c.labels(r) : r % 4 === 0 ? 0 : r % 4 === 1 ? cols - 1 : r % 4 === 2 ? cols + 5 : rng.int(cols)) + (c.classOffset ?? 0));
  // t as CurricularFace's running mean would be, and some beyond.
  const context = Float32Array.from({ length: rows }, () => 1.6 * rng.uniform() - 0.4);
  const globalLse = c.global ? Float32Array.from({ length: rows }, () => 150 + 10 * rng.uniform()) : null;
  const { outs, z: read } = await runMarginLoss(b, t, {
    rows, cols, classOffset: c.classOffset ?? 0, z, labels, context: c.noContext ? null : context, bias: c.bias ?? null, globalLse,
    withLse: !!c.withLse, contextGrad: false, half: !!c.half, reducer: 'softmax-ce', positiveWeight: 1, negativeWeight: 1,
  });
  return { outs, z: read, labels, context: c.noContext ? new Float32Array(rows) : context };
}

/** How many non-target scores are above their row's threshold, and how many at or below it (the float64 comparison). */
function maskCounts(t: MarginTransform, c: Case, r: { z: Float32Array; labels: Int32Array; context: Float32Array }): [number, number] {
  let on = 0, off = 0;
  for (let row = 0; row < c.rows; row++) {
    const y = r.labels[row] - (c.classOffset ?? 0);
    const has = y >= 0 && y < c.cols;
    const thr = t.otherThreshold!.threshold(t.uniforms, { target: has ? r.z[row * c.cols + y] : NaN, context: r.context[row] });
    for (let j = 0; j < c.cols; j++) if (j !== y) (clampUnit(r.z[row * c.cols + j]) > thr ? on++ : off++);
  }
  return [on, off];
}

/** Same bits at 1, 2 and 3 threads, and close to the TypeScript reference (values and gradients). */
async function expectSimdMatches(t: MarginTransform, c: Case, seed: number, gradTol = { rtol: 1e-5, atol: 1e-7 }) {
  const [a, b2, b3, want] = await Promise.all([backends.one, backends.two, backends.three, backends.reference].map((b) => run(b, t, c, seed)));
  const names = ['grad', 'rowLoss', 'rowLogitGrad', 'rowLogSumExp'];
  a.outs.forEach((got, i) => {
    expect(Buffer.from(b2.outs[i].buffer).equals(Buffer.from(got.buffer)), `${names[i]} at 2 threads`).toBe(true);
    expect(Buffer.from(b3.outs[i].buffer).equals(Buffer.from(got.buffer)), `${names[i]} at 3 threads`).toBe(true);
    expectClose(got, want.outs[i], i === 0 ? gradTol : { rtol: 1e-5, atol: 1e-7 }, `${t.key}: ${names[i]}`);
  });
  return maskCounts(t, c, a);
}

const CASES: [string, Case][] = [
  ['128x10000, the CurricularFace head shape', { rows: 128, cols: 10_000 }],
  ['7x1031 with bias and row log-sum-exp', { rows: 7, cols: 1031, bias: -3, withLse: true }],
  ['64x2051 shard at class 100 with a global log-sum-exp (rows without their target: no hard scores)', { rows: 64, cols: 2051, classOffset: 100, global: true }],
  ['5x3 and a single column', { rows: 5, cols: 3 }],
  ['33x517 without a row context (t = 0)', { rows: 33, cols: 517, noContext: true }],
  ['9x1', { rows: 9, cols: 1 }],
];

describe('marginLoss (softmax-ce over otherThreshold) on SIMD', () => {
  for (const [name, c] of CASES) {
    test(`${hardNegative.key}: ${name}: same bits at 1, 2 and 3 threads, close to the TypeScript reference`, async () => {
      const [on, off] = await expectSimdMatches(hardNegative, c, 21);
      if (c.cols > 3) expect(on > 0 && off > 0, `scores above (${on}) and below (${off}) the thresholds`).toBe(true);
    });
  }

  test('float16 logits and gradient, 64x2051 with bias (converted a row at a time in the kernel)', async () => {
    // The gradient is rounded to float16: a float32 difference may move it by one float16 ulp.
    const [on, off] = await expectSimdMatches(hardNegative, { rows: 64, cols: 2051, bias: 1, half: true }, 22, { rtol: 2 ** -10, atol: 1e-7 });
    expect(on > 0 && off > 0).toBe(true);
  });

  test('scores exactly at the threshold stay below it; the next float32 up is above (the float64 comparison)', async () => {
    // Row r's target score sits at column 0; the others at it, one float32 step either side, and farther.
    const targets = [0.3, -0.55, 0.8125, 0.0625, -0.9];
    const c: Case = {
      rows: targets.length, cols: 13, labels: () => 0,
      scores: (r) => {
        const y = Math.fround(targets[r]);
        return [y, y, y, y, step(y, 1), step(y, 1), step(y, -1), step(y, -1), y + 0.25, y - 0.25, step(step(y, 1), 1), 1.05, -1.05];
      },
    };
    const [on, off] = await expectSimdMatches(atTarget, c, 23);
    // Per row, above: one step up (twice), two steps up, +0.25 and 1.05 (clamped to 1); the rest at or below.
    expect([on, off]).toEqual([25, 35]);
  });

  test('CurricularFace\'s float64 thresholds: the float32 scores either side of each flip', async () => {
    const targets = [0.3, -0.2, 0.7, 0.95];
    const c: Case = {
      rows: targets.length, cols: 12, labels: () => 0,
      scores: (r) => {
        const y = Math.fround(targets[r]);
        const below = float32AtOrBelow(cosPlus(y, Math.cos(0.5), Math.sin(0.5)));
        const above = step(below, 1);
        return [y, below, below, above, above, below - 0.01, above + 0.01, Math.fround(below + 2 ** -30), -0.5, 0.5, 0.99, -0.99];
      },
    };
    const [on, off] = await expectSimdMatches(hardNegative, c, 24);
    expect(on > 0 && off > 0).toBe(true);
  });

  test('a declaration that disagrees with other/otherGrad is refused, naming the transform and the score', async () => {
    const lying = thresholdMargin('lying-threshold', 64, (u, row) => cosPlus(clampUnit(row.target), u.cos_m, u.sin_m), (u, row) => cosPlus(clampUnit(row.target), u.cos_m, u.sin_m) + 0.01);
    await expect(run(backends.one, lying, { rows: 2, cols: 8 }, 3)).rejects.toThrow(/transform lying-threshold: otherThreshold .* disagrees with other\/otherGrad at z = .* \(row target 0\.3, context 0, threshold .*\): they give .* the declaration /);
  });

  test('a transform whose mask takes in the threshold itself (>=) is refused at the threshold', async () => {
    const inclusive = thresholdMargin('inclusive-threshold', 16, (_u, row) => row.target, undefined, true);
    await expect(run(backends.one, inclusive, { rows: 2, cols: 8 }, 3)).rejects.toThrow(/transform inclusive-threshold: otherThreshold .* disagrees with other\/otherGrad at z = 0\.3 \(row target 0\.3, context 0, threshold 0\.3\): they give 1\.4\d* and 9\.6\d*, the declaration 4\.8\d* and 16/);
  });

  test('float32AtOrBelow: the largest float32 at or below, NaN none', () => {
    const thr = 0.1;
    const b = float32AtOrBelow(thr);
    expect(Math.fround(b)).toBe(b);
    expect(b).toBeLessThanOrEqual(thr);
    expect(new Float32Array([b + 2 ** -27])[0]).toBeGreaterThan(thr);
    expect(float32AtOrBelow(0.25)).toBe(0.25);
    expect(float32AtOrBelow(Number.NaN)).toBe(Infinity);
  });
});
