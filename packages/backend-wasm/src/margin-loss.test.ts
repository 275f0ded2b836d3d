import { arcMarginTransform, createRng, defineTransform, identityTransform, scaledTransform, type Backend, type MarginTransform, type Reducer } from '@fr/core';
import { expectClose } from '@fr/core/testing';
import { describe, expect, test } from 'vitest';
import { float32Bounds } from './linear-other.js';
import { runMarginLoss, suiteBackends, type MarginCase } from '../test/margin-loss-kit.js';

const backends = suiteBackends();

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

// MagFace's shape: the target's margin is the row context, differentiated; the others are clamped
// cosines, independent of it.
const contextGradMargin = defineTransform({
  key: 'test-context-gradient',
  uniforms: { s: 32 },
  contextGradient: true,
  target: (z, u, row) => u.s * Math.cos(Math.acos(Math.min(Math.max(z, -1), 1)) + row.context),
  targetGrad: (z, u, row) => u.s * Math.sin(Math.acos(Math.min(Math.max(z, -1), 1)) + row.context) / Math.sqrt(Math.max(1 - z * z, 1e-6)),
  targetContextGrad: (z, u, row) => -u.s * Math.sin(Math.acos(Math.min(Math.max(z, -1), 1)) + row.context),
  other: (z, u) => u.s * Math.min(Math.max(z, -1), 1),
  otherGrad: (z, u) => (Math.abs(z) > 1 ? 0 : u.s),
  otherContextGrad: () => 0,
  otherLinear: { scale: 32, lo: -1, hi: 1, slope: 32, slopeOutside: 0 },
  wgsl: /* wgsl */ `
fn fr_theta(z: f32) -> f32 { return acos(clamp(z, -1.0, 1.0)); }
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * cos(fr_theta(z) + row.context); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s * sin(fr_theta(z) + row.context) / sqrt(max(1.0 - z * z, 1e-6)); }
fn fr_target_context_grad(z: f32, row: FrRow) -> f32 { return -u.s * sin(fr_theta(z) + row.context); }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, -1.0, 1.0); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return select(u.s, 0.0, abs(z) > 1.0); }
fn fr_other_context_grad(z: f32, row: FrRow) -> f32 { return 0.0; }
`,
});

const TRANSFORMS: MarginTransform[] = [
  arcMarginTransform(64, 0.5, 'detached'), arcMarginTransform(64, 0.5, 'exact'), scaledTransform(30), identityTransform, contextMargin, contextGradMargin,
];

interface Case extends MarginCase {
  /** Ask for the row context's gradient (transforms with contextGradient). */
  contextGrad?: boolean;
  reducer?: Reducer;
}

/** Runs marginLoss on `b`; returns grad, rowLoss, rowLogitGrad (then rowLogSumExp, rowContextGrad when asked for). */
async function run(b: Backend, t: MarginTransform, c: Case, seed: number): Promise<Float32Array[]> {
  const rng = createRng(seed);
  const { rows, cols } = c;
  const z = Float32Array.from({ length: rows * cols }, () => 2.2 * rng.uniform() - 1.1);
  // Labels at the row edges and outside this buffer's classes too.
  const labels = Int32Array.from({ length: rows }, (_, r) => (r % 4 === 0 ? 0 : r % 4 === 1 ? cols - 1 : r % 4 === 2 ? cols + 5 : rng.int(cols)) + (c.classOffset ?? 0));
  const context = Float32Array.from({ length: rows }, () => rng.normal());
  const globalLse = c.global ? Float32Array.from({ length: rows }, () => 40 + 10 * rng.uniform()) : null;
  const { outs } = await runMarginLoss(b, t, {
    rows, cols, classOffset: c.classOffset ?? 0, z, labels, context, bias: c.bias ?? null, globalLse, withLse: !!c.withLse,
    contextGrad: !!c.contextGrad, half: !!c.half, reducer: c.reducer ?? 'softmax-ce', positiveWeight: 0.7, negativeWeight: 0.3,
  });
  return outs;
}

const CASES: [string, Case][] = [
  ['128x10000, the ArcFace head shape', { rows: 128, cols: 10_000 }],
  ['7x1031 with bias and row log-sum-exp', { rows: 7, cols: 1031, bias: -3, withLse: true }],
  ['64x2051 shard at class 100 with a global log-sum-exp', { rows: 64, cols: 2051, classOffset: 100, global: true }],
  ['5x3 and a single column', { rows: 5, cols: 3 }],
  ['9x1', { rows: 9, cols: 1 }],
];
const CONTEXT_CASES: [string, Case][] = [
  ['128x10000 with the context gradient', { rows: 128, cols: 10_000, contextGrad: true }],
  ['64x2051 shard at class 100, global log-sum-exp, context gradient', { rows: 64, cols: 2051, classOffset: 100, global: true, contextGrad: true }],
  ['5x3 with bias, row log-sum-exp and the context gradient', { rows: 5, cols: 3, bias: 2, withLse: true, contextGrad: true }],
];

describe('marginLoss (softmax-ce over otherLinear) on SIMD', () => {
  for (const t of TRANSFORMS) {
    for (const [name, c] of t.contextGradient ? [...CASES, ...CONTEXT_CASES] : CASES) {
      test(`${t.key}: ${name}: same bits at 1, 2 and 3 threads, close to the TypeScript reference`, async () => {
        const [a, b2, b3, want] = await Promise.all([backends.one, backends.two, backends.three, backends.reference].map((b) => run(b, t, c, 11)));
        const names = ['grad', 'rowLoss', 'rowLogitGrad', ...(c.withLse ? ['rowLogSumExp'] : []), 'rowContextGrad'];
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
    await expect(run(backends.one, lying, { rows: 2, cols: 8 }, 3)).rejects.toThrow(/transform lying: otherLinear .* disagrees with other\/otherGrad at z = -2 .*they give -60 .* the declaration -30/);
  });

  test('a declaration with a context-dependent otherContextGrad is refused: the declared logits do not depend on the context', async () => {
    const dependent = defineTransform({ ...contextGradMargin, key: 'context-dependent', otherContextGrad: (z) => 0.5 * z });
    await expect(run(backends.one, dependent, { rows: 2, cols: 8, contextGrad: true }, 3)).rejects.toThrow(/transform context-dependent: otherLinear .* independent of the row context, but otherContextGrad gives -1 at z = -2/);
  });

  test('a context gradient without the transform\'s context slopes is refused as the reference refuses it', async () => {
    await expect(run(backends.one, contextMargin, { rows: 2, cols: 8, contextGrad: true }, 3)).rejects.toThrow(/rowContextGrad needs a row context and a transform with contextGradient \(test-context-margin has none\)/);
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

/** SphereFace2's shape: r (2 ((c + 1) / 2)^t - 1 + m) of the clamped score, a detached slope r. */
function powerMargin(t: number, lo: number, hi: number): MarginTransform {
  const g = (z: number, u: Record<string, number>) => 2 * Math.pow(Math.max((Math.min(Math.max(z, u.lo), u.hi) + 1) / 2, 0), u.t) - 1;
  return defineTransform({
    key: `test-power-${t}`,
    uniforms: { r: 30, m: 0.3, t, lo, hi },
    target: (z, u) => u.r * (g(z, u) - u.m),
    targetGrad: (_z, u) => u.r,
    other: (z, u) => u.r * (g(z, u) + u.m),
    otherGrad: (_z, u) => u.r,
    otherPower: { scale: 60, lo, hi, inner: 0.5, shift: 0.5, power: t, offset: 30 * (0.3 - 1), slope: 30, slopeOutside: 30 },
    wgsl: /* wgsl */ `
fn fr_g(z: f32) -> f32 { return 2.0 * pow(max((clamp(z, u.lo, u.hi) + 1.0) * 0.5, 0.0), u.t) - 1.0; }
fn fr_target(z: f32, row: FrRow) -> f32 { return u.r * (fr_g(z) - u.m); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.r; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.r * (fr_g(z) + u.m); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.r; }
`,
  });
}

const SIGMOID_TRANSFORMS: MarginTransform[] = [
  powerMargin(3, -Infinity, Infinity), powerMargin(3, -1 + 1e-5, 1 - 1e-5), powerMargin(2.5, -1, 1), powerMargin(1, -Infinity, Infinity),
  scaledTransform(30), arcMarginTransform(64, 0.5, 'detached'), contextMargin, contextGradMargin,
];
const SIGMOID_CASES: [string, Case][] = [
  ['128x10000, the SphereFace2 head shape, bias -8', { rows: 128, cols: 10_000, bias: -8 }],
  ['64x2051 shard at class 100, bias 2', { rows: 64, cols: 2051, classOffset: 100, bias: 2 }],
  ['7x1031 without bias', { rows: 7, cols: 1031 }],
  ['5x3 and a single column', { rows: 5, cols: 3, bias: -1 }],
  ['9x1', { rows: 9, cols: 1, bias: -3 }],
];

describe('marginLoss (sigmoid-ova over otherLinear or otherPower) on SIMD', () => {
  for (const t of SIGMOID_TRANSFORMS) {
    const cases = SIGMOID_CASES.map(([name, c]): [string, Case] => [name, { ...c, reducer: 'sigmoid-ova', contextGrad: t.contextGradient }]);
    for (const [name, c] of cases) {
      test(`${t.key}: ${name}: same bits at 1, 2 and 3 threads, close to the TypeScript reference`, async () => {
        const [a, b2, b3, want] = await Promise.all([backends.one, backends.two, backends.three, backends.reference].map((b) => run(b, t, c, 12)));
        const names = ['grad', 'rowLoss', 'rowLogitGrad', 'rowContextGrad'];
        a.forEach((got, i) => {
          expect(Buffer.from(b2[i].buffer).equals(Buffer.from(got.buffer))).toBe(true);
          expect(Buffer.from(b3[i].buffer).equals(Buffer.from(got.buffer))).toBe(true);
          expectClose(got, want[i], { rtol: 1e-5, atol: 1e-7 }, `${t.key} ${name}: ${names[i]}`);
        });
      });
    }
  }

  test('a power declaration that disagrees with other is refused, naming the transform and the score', async () => {
    const lying = defineTransform({ ...powerMargin(3, -1, 1), key: 'lying-power', otherPower: { ...powerMargin(3, -1, 1).otherPower!, power: 2 } });
    await expect(run(backends.one, lying, { rows: 2, cols: 8, reducer: 'sigmoid-ova' }, 3)).rejects.toThrow(/transform lying-power: otherPower .* disagrees with other\/otherGrad at z = -0.99999 \(row target 0.3, context 0\): they give -20.99999999999999\d* and 30, the declaration -20.9999999985 and 30/);
  });

  test('softmax-ce does not take a power declaration: the reference runs it, with the same result', async () => {
    const t = powerMargin(3, -1, 1);
    const [got, want] = await Promise.all([backends.one, backends.reference].map((b) => run(b, t, { rows: 4, cols: 33 }, 5)));
    got.forEach((x, i) => expect(Buffer.from(x.buffer).equals(Buffer.from(want[i].buffer))).toBe(true));
  });
});

describe('marginLoss with float16 logits and gradient on SIMD (converted a row at a time in the kernel)', () => {
  const cases: [MarginTransform, string, Case][] = [
    [arcMarginTransform(64, 0.5, 'detached'), '128x10000 (float16 rows converted in the kernel)', { rows: 128, cols: 10_000, half: true }],
    [contextGradMargin, '64x2051 shard at class 100, global log-sum-exp, context gradient', { rows: 64, cols: 2051, classOffset: 100, global: true, contextGrad: true, half: true }],
    [contextMargin, '7x1031 with bias and row log-sum-exp', { rows: 7, cols: 1031, bias: -3, withLse: true, half: true }],
    [powerMargin(3, -Infinity, Infinity), 'sigmoid-ova 128x10000 (float16 rows converted in the kernel), bias -8', { rows: 128, cols: 10_000, bias: -8, reducer: 'sigmoid-ova', half: true }],
    [contextGradMargin, 'sigmoid-ova 5x3, context gradient', { rows: 5, cols: 3, bias: -1, reducer: 'sigmoid-ova', contextGrad: true, half: true }],
  ];
  for (const [t, name, c] of cases) {
    test(`${t.key}: ${name}: same bits at 1, 2 and 3 threads, close to the TypeScript reference`, async () => {
      const [a, b2, b3, want] = await Promise.all([backends.one, backends.two, backends.three, backends.reference].map((b) => run(b, t, c, 13)));
      const names = ['grad', 'rowLoss', 'rowLogitGrad', ...(c.withLse ? ['rowLogSumExp'] : []), 'rowContextGrad'];
      a.forEach((got, i) => {
        expect(Buffer.from(b2[i].buffer).equals(Buffer.from(got.buffer))).toBe(true);
        expect(Buffer.from(b3[i].buffer).equals(Buffer.from(got.buffer))).toBe(true);
        // The gradient is rounded to float16: a float32 difference may move it by one float16 ulp (2^-11 relative).
        expectClose(got, want[i], i === 0 ? { rtol: 2 ** -10, atol: 1e-7 } : { rtol: 1e-5, atol: 1e-7 }, `${t.key} ${name}: ${names[i]}`);
      });
    });
  }
});
