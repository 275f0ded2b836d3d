import { expect, test } from 'vitest';
import { TRIG_WGSL } from './trig.js';
import { ACOS_CONSTANTS, acosF32, SIN_COS_CONSTANTS, sinCosF32 } from './testing/trig-reference.js';

// The WGSL itself runs in the WebGPU precision suites of AdaFace, ElasticFace and MagFace (fr_sin_cos),
// SphereFace and SphereFace2 (both) and X2-Softmax (fr_acos).

test('sinCosF32 (the f32 twin of fr_sin_cos) is within 2 f32 ulps of 1 of sin and cos on [-4, 4]', () => {
  let worst = 0;
  for (let i = -40000; i <= 40000; i++) {
    const x = Math.fround(i * 1e-4);
    const [s, c] = sinCosF32(x);
    worst = Math.max(worst, Math.abs(s - Math.sin(x)), Math.abs(c - Math.cos(x)));
  }
  // WGSL's built-in sin/cos only promise 2^-11 = 4.9e-4.
  expect(worst).toBeLessThan(2 * 2 ** -23);
  expect(worst).toBeGreaterThan(0);
});

test('sinCosF32 keeps the quadrants: exact values at 0 and the signs at multiples of pi/2', () => {
  expect(sinCosF32(0)).toEqual([0, 1]);
  for (const [x, sin, cos] of [[1, 1, 0], [2, 0, -1], [3, -1, 0], [-1, -1, 0], [-2, 0, -1]] as const) {
    const [s, c] = sinCosF32((x * Math.PI) / 2);
    expect(s).toBeCloseTo(sin, 6);
    expect(c).toBeCloseTo(cos, 6);
  }
});

test('acosF32 (the f32 twin of fr_acos) is within 1.2 f32 ulps of acos on [-1, 1)', () => {
  let worstUlps = 0;
  for (let i = -500000; i < 500000; i++) {
    const x = Math.fround(i * 2e-6);
    const want = Math.acos(x);
    const ulp = 2 ** (Math.floor(Math.log2(want)) - 23);
    worstUlps = Math.max(worstUlps, Math.abs(acosF32(x) - want) / ulp);
  }
  // WGSL's built-in acos: SphereFace's loss lost 0.12 of its golden tolerance to it on SwiftShader.
  expect(worstUlps).toBeLessThan(1.2);
  expect(worstUlps).toBeGreaterThan(0);
});

test('acosF32 at the ends and across the split at |x| = 1/2', () => {
  expect(acosF32(1)).toBe(0);
  expect(acosF32(-1)).toBe(Math.fround(Math.PI));
  expect(acosF32(0)).toBe(Math.fround(Math.PI / 2));
  for (const x of [0.5, Math.fround(0.5 + 2 ** -24), -0.5, Math.fround(-0.5 - 2 ** -24), Math.fround(1 - 1e-5), Math.fround(-1 + 1e-5)]) {
    expect(Math.abs(acosF32(x) - Math.acos(x))).toBeLessThan(2.5e-7);
  }
});

test('the WGSL uses the twins\' constants, and no other', () => {
  const K = SIN_COS_CONSTANTS;
  const wgsl = new Set((TRIG_WGSL.match(/\d+\.\d+(e-\d+)?/g) ?? []).map(Number));
  // 0, 1/2, 1 and 2 are exact: comparisons, the split of acos and its reductions.
  const twin = new Set([K.twoOverPi, K.pio2Hi, K.pio2LoNeg, ...K.sin, ...K.cos, ...ACOS_CONSTANTS.asin, 0, 0.5, 1, 2].map(Math.abs));
  expect([...wgsl].sort()).toEqual([...twin].sort());
});
