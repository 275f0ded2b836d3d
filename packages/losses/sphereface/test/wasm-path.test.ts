import { expect, test } from 'vitest';
import type { MarginTransform } from '@fr/core';
import { wasmOtherCalls } from '@fr/test-kit';
import { aSoftmaxTransform, spherefaceTransform } from '../src/index.js';

// The wasm backend runs the non-target scores of a transform that declares them (otherLinear) in
// SIMD, without calling `other`; undeclared, it runs the reference: one `other` call per score.
const undeclared = (t: MarginTransform): MarginTransform => ({ ...t, otherLinear: undefined });

test('sphereface (opensphere): the wasm softmax loss takes the SIMD path', async () => {
  const t = spherefaceTransform(30, 1.5);
  expect(await wasmOtherCalls(t)).toBe(0);
  expect(await wasmOtherCalls(undeclared(t))).toBeGreaterThan(8 * 500);
});

test('a-softmax: the wasm softmax loss takes the SIMD path', async () => {
  const t = aSoftmaxTransform(4, 5);
  expect(await wasmOtherCalls(t, { context: 5 })).toBe(0);
  expect(await wasmOtherCalls(undeclared(t), { context: 5 })).toBeGreaterThan(8 * 500);
});
