import { expect, test } from 'vitest';
import type { MarginTransform } from '@fr/core';
import { wasmOtherCalls } from '@fr/test-kit';
import { magfaceTransform } from '../src/index.js';

// The wasm backend runs the non-target scores of a transform that declares them (otherLinear) in
// SIMD, without calling `other`; undeclared, it runs the reference: one `other` call per score.
const undeclared = (t: MarginTransform): MarginTransform => ({ ...t, otherLinear: undefined });

test('magface: the wasm softmax loss takes the SIMD path', async () => {
  const t = magfaceTransform(64, false);
  expect(await wasmOtherCalls(t)).toBe(0);
  expect(await wasmOtherCalls(undeclared(t))).toBeGreaterThan(8 * 500);
});

test('magface-easy: the wasm softmax loss takes the SIMD path', async () => {
  const t = magfaceTransform(64, true);
  expect(await wasmOtherCalls(t)).toBe(0);
  expect(await wasmOtherCalls(undeclared(t))).toBeGreaterThan(8 * 500);
});

// The margin's gradient in the trained feature norm (row context) is not in the SIMD loop: a
// training step of MagFace runs the reference on wasm, an evaluation (constant norm) the SIMD path.
test('magface: with a context gradient the wasm loss runs the reference', async () => {
  expect(await wasmOtherCalls(magfaceTransform(64, false), { contextGrad: true })).toBeGreaterThan(8 * 500);
});
