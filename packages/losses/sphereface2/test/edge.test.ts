import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, parseLossParams, tensor, tidy, type Backend } from '@fr/core';
import { initialBias, sphereface2, sphereface2Transform } from '../src/index.js';
import { backends } from '@fr/test-kit';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

test('defaults of opensphere', () => {
  expect(parseLossParams(sphereface2, {})).toEqual({ lambda: 0.7, r: 40, m: 0.4, t: 3, lw: 50, margin: 'C' });
  expect(() => parseLossParams(sphereface2, { margin: 'B' })).toThrow(/sphereface2 params: margin/);
});

test.each(['C', 'A', 'M'] as const)('initial bias of type %s balances the positive and negative gradients', (margin) => {
  for (const C of [10, 10_000]) {
    const p = parseLossParams(sphereface2, { margin, m: margin === 'M' ? 1.5 : 0.4 });
    const b = initialBias(p, C);
    const { r, t, m, lambda } = p;
    let ay: number;
    let ai: number;
    if (margin === 'C') [ay, ai] = [r * (2 * 0.5 ** t - 1 - m), r * (2 * 0.5 ** t - 1 + m)];
    else {
      const theta = Math.min(Math.PI, margin === 'A' ? Math.PI / 2 + m : (m * Math.PI) / 2);
      [ay, ai] = [r * (2 * ((Math.cos(theta) + 1) / 2) ** t - 1), r * (2 * 0.5 ** t - 1)];
    }
    // lambda sigma(-(a_y + b)) = (1 - lambda)(C - 1) sigma(a_i + b): the paper's balance condition.
    expect(lambda * sigmoid(-(ay + b))).toBeCloseTo((1 - lambda) * (C - 1) * sigmoid(ai + b), 10);
  }
  expect(initialBias(parseLossParams(sphereface2, { margin }), 1)).toBe(0);
});

test('transforms: C shifts g by -/+ m; A and M clamp theta; slope r', () => {
  const row = { target: 0, context: 0 };
  const g = (z: number) => 2 * ((z + 1) / 2) ** 3 - 1;
  const c = sphereface2Transform(parseLossParams(sphereface2, {}));
  expect(c.target(0.5, c.uniforms, row)).toBeCloseTo(40 * (g(0.5) - 0.4), 10);
  expect(c.other(0.5, c.uniforms, row)).toBeCloseTo(40 * (g(0.5) + 0.4), 10);
  expect(c.other(-1.0000001, c.uniforms, row)).toBeCloseTo(-40 + 16, 5); // no NaN from pow below -1
  const a = sphereface2Transform(parseLossParams(sphereface2, { margin: 'A', m: 0.5 }));
  expect(a.target(-1, a.uniforms, row)).toBeCloseTo(40 * g(Math.cos(3.14159)), 8);
  const m = sphereface2Transform(parseLossParams(sphereface2, { margin: 'M', m: 1.7 }));
  expect(m.target(0, m.uniforms, row)).toBeCloseTo(40 * g(Math.cos(Math.min(1.7 * Math.PI / 2, 3.14159))), 8);
  expect(m.targetGrad(0.3, m.uniforms, row)).toBe(40);
});

describe.each(backends)('sphereface2 on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('one class and a batch of one: only the positive term, finite gradients', async () => {
    const head = sphereface2.createHead({ backend, numClasses: 1, embeddingDim: 3, params: parseLossParams(sphereface2, {}), rng: createRng(1) });
    expect(head.parameters.map((p) => p.name)).toEqual(['sphereface2.weight', 'sphereface2.bias']);
    backend.write(head.parameters[0].tensor.buffer(), Float32Array.from([0, 0, 1]));
    const x = tensor(backend, [0, 0, 2], [1, 3], { requiresGrad: true });
    const l = tidy(() => {
      const l = head.forward(x, Int32Array.from([0]));
      backward(l);
      return l;
    });
    // cos = 1: z = 40 (g(1) - 0.4) + 0 = 24; loss = lw / r * lambda * softplus(-24).
    expect(await l.item()).toBeCloseTo((50 / 40) * 0.7 * Math.log1p(Math.exp(-24)), 12);
    expect(Array.from(await head.parameters[1].tensor.grad!.data())[0]).toBeCloseTo(-(50 / 40) * 0.7 * sigmoid(-24), 12);
    head.dispose();
  });
});
