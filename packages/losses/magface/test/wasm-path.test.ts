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

// A training step differentiates the margin in the trained feature norm (row context): the SIMD
// loop writes that gradient too, from the target column alone (the declared non-target logits do
// not depend on the norm), so the step stays off the reference.
for (const easy of [false, true]) {
  test(`magface${easy ? '-easy' : ''}: with a context gradient the wasm loss takes the SIMD path`, async () => {
    const t = magfaceTransform(64, easy);
    expect(await wasmOtherCalls(t, { contextGrad: true })).toBe(0);
    expect(await wasmOtherCalls(undeclared(t), { contextGrad: true })).toBeGreaterThan(8 * 500);
  });
}

test('magface with float16 logits and gradient and the context gradient takes the SIMD path', async () => {
  const t = magfaceTransform(64, true);
  expect(await wasmOtherCalls(t, { contextGrad: true, half: true })).toBe(0);
  expect(await wasmOtherCalls(undeclared(t), { contextGrad: true, half: true })).toBeGreaterThan(8 * 500);
});
