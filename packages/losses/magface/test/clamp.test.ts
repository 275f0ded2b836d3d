import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, parseLossParams, sum, tensor, tidy, type Backend } from '@fr/core';
import { marginGradients } from '@fr/core/testing';
import { clampOp, magface, magfaceTransform } from '../src/index.js';
import { backends } from '@fr/test-kit';

/** dL/dx of one step of the default head on one row x (D = 3, C = 2, label 0). */
async function gradAt(backend: Backend, x: readonly number[]): Promise<Float32Array> {
  const head = magface.createHead({ backend, numClasses: 2, embeddingDim: 3, params: parseLossParams(magface, {}), rng: createRng(1) });
  backend.write(head.parameters[0].tensor.buffer(), Float32Array.of(0.6, 0, 0.8, 0, 1, 0));
  const xt = tensor(backend, Float32Array.from(x), [1, 3], { requiresGrad: true });
  const l = tidy(() => {
    const l = head.forward(xt, Int32Array.of(0));
    backward(l);
    return l;
  });
  const g = Float32Array.from(await xt.grad!.data());
  l.dispose();
  xt.dispose();
  head.dispose();
  return g;
}

const scaled = (v: readonly number[], f: number) => v.map((e) => Math.fround(e * f));
const distance = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.hypot(...Array.from(a, (v, i) => v - b[i]));

describe.each(backends)('magface clamp of |x| on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('clampOp passes the gradient on [lo, hi] bounds included (torch.clamp), zero strictly outside', async () => {
    const a = tensor(backend, Float32Array.of(5, 10, 50, 110, 120, Math.fround(9.999999), Math.fround(110.00001)), [7], { requiresGrad: true });
    const out = tidy(() => {
      const s = sum(clampOp(a, 10, 110));
      backward(s);
      return s;
    });
    expect(Array.from(await a.grad!.data())).toEqual([0, 1, 1, 1, 0, 0, 0]);
    out.dispose();
    a.dispose();
  });

  // |x| = 10 = l_a and 110 = u_a exactly (3-4-5 rows); the gradient there is the one from just inside.
  for (const [bound, x, inward] of [['l_a', [6, 8, 0], 1 + 1e-6], ['u_a', [66, 88, 0], 1 - 1e-6]] as const) {
    test(`a row with |x| exactly ${bound} keeps the gradient through its magnitude`, async () => {
      const at = await gradAt(backend, x);
      const inside = await gradAt(backend, scaled(x, inward));
      const outside = await gradAt(backend, scaled(x, 2 - inward));
      const size = Math.hypot(...at);
      // Continuous from inside; from outside the magnitude's share is missing (margin and regulariser).
      expect(distance(at, inside)).toBeLessThan(1e-3 * size);
      expect(distance(at, outside)).toBeGreaterThan(1e-2 * size);
    });
  }

  // The official MagLinear clamps the cosine to [-1, 1]: torch.clamp stops the gradient beyond.
  for (const easy of [true, false]) {
    test(`easy_margin ${easy}: a cosine beyond +-1 (by rounding) gets no gradient in the score, target or not`, async () => {
      const above = Math.fround(1 + 2 ** -23);
      const g = await marginGradients(backend, {
        scores: [above, 0.85, above, 0.5, -above, -0.9], labels: [0, 1, 0], context: [0.5, 0.45, 0.7], cols: 2, transform: magfaceTransform(64, easy),
      });
      for (const i of [0, 2, 4]) expect(Math.abs(g[i]), `grad[${i}]`).toBe(0);
      for (const i of [1, 3, 5]) expect(Math.abs(g[i]), `grad[${i}]`).toBeGreaterThan(0.1);
    });
  }
});
