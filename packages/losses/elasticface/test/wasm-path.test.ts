import { expect, test } from 'vitest';
import type { MarginTransform } from '@fr/core';
import { wasmOtherCalls } from '@fr/test-kit';
import { elasticArcTransform, elasticCosTransform } from '../src/index.js';

// The wasm backend runs the non-target scores of a transform that declares them (otherLinear) in
// SIMD, without calling `other`; undeclared, it runs the reference: one `other` call per score.
const undeclared = (t: MarginTransform): MarginTransform => ({ ...t, otherLinear: undefined });

test('elastic-arcface: the wasm softmax loss takes the SIMD path', async () => {
  const t = elasticArcTransform(64);
  expect(await wasmOtherCalls(t)).toBe(0);
  expect(await wasmOtherCalls(undeclared(t))).toBeGreaterThan(8 * 500);
});

test('elastic-cosface: the wasm softmax loss takes the SIMD path', async () => {
  const t = elasticCosTransform(64);
  expect(await wasmOtherCalls(t)).toBe(0);
  expect(await wasmOtherCalls(undeclared(t))).toBeGreaterThan(8 * 500);
});
