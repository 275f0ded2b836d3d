import { expect, test } from 'vitest';
import { TRIG_WGSL } from './trig.js';
import { SIN_COS_CONSTANTS, sinCosF32 } from './testing/trig-reference.js';

// The WGSL itself runs in every WebGPU suite of AdaFace, ElasticFace and MagFace (their precision tests).

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

test('the WGSL uses the twin\'s constants, and no other', () => {
  const K = SIN_COS_CONSTANTS;
  const wgsl = new Set((TRIG_WGSL.match(/\d+\.\d+(e-\d+)?/g) ?? []).map(Number));
  const twin = new Set([K.twoOverPi, K.pio2Hi, K.pio2LoNeg, ...K.sin, ...K.cos, 1].map(Math.abs));
  expect([...wgsl].sort()).toEqual([...twin].sort());
});
