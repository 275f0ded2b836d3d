import { expect, test } from 'vitest';
import type { MarginTransform } from '@fr/core';
import { wasmOtherCalls } from '@fr/test-kit';
import { officialArcTransform } from '../src/index.js';

// The wasm backend runs the non-target scores of a transform that declares them (otherLinear) in
// SIMD, without calling `other`; undeclared, it runs the reference: one `other` call per score.
const undeclared = (t: MarginTransform): MarginTransform => ({ ...t, otherLinear: undefined });

test('subcenter-arc-official: the wasm softmax loss takes the SIMD path', async () => {
  const t = officialArcTransform(64, 0.5);
  expect(await wasmOtherCalls(t)).toBe(0);
  expect(await wasmOtherCalls(undeclared(t))).toBeGreaterThan(8 * 500);
});
