import { expect, test } from 'vitest';
import { parseLossParams, type MarginTransform } from '@fr/core';
import { wasmOtherCalls } from '@fr/test-kit';
import { sphereface2, sphereface2Transform } from '../src/index.js';

// The wasm backend runs the non-target scores of a transform that declares them in closed form
// (otherPower: r (g(z) + m), a power of the clamped score) in SIMD, the one-vs-all softplus and
// sigmoid terms included, without calling `other`; undeclared, it runs the reference: one `other`
// call per score.
const undeclared = (t: MarginTransform): MarginTransform => ({ ...t, otherPower: undefined });

for (const margin of ['C', 'A', 'M'] as const) {
  test(`sphereface2-${margin}: the wasm one-vs-all loss takes the SIMD path`, async () => {
    const t = sphereface2Transform(parseLossParams(sphereface2, { margin }));
    expect(await wasmOtherCalls(t, { reducer: 'sigmoid-ova', bias: -5 })).toBe(0);
    expect(await wasmOtherCalls(undeclared(t), { reducer: 'sigmoid-ova', bias: -5 })).toBeGreaterThan(8 * 500);
  });
}

test('sphereface2 with a whole power t = 2 and a fractional t = 2.5 takes the SIMD path', async () => {
  for (const t of [2, 2.5]) expect(await wasmOtherCalls(sphereface2Transform(parseLossParams(sphereface2, { t })), { reducer: 'sigmoid-ova', bias: -5 })).toBe(0);
});

test('sphereface2 with float16 logits and gradient (a sharded head) takes the SIMD path', async () => {
  const t = sphereface2Transform(parseLossParams(sphereface2, {}));
  expect(await wasmOtherCalls(t, { reducer: 'sigmoid-ova', bias: -5, half: true })).toBe(0);
  expect(await wasmOtherCalls(undeclared(t), { reducer: 'sigmoid-ova', bias: -5, half: true })).toBeGreaterThan(8 * 500);
});
