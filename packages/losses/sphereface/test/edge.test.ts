import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, parseLossParams, tensor, tidy, type Backend } from '@fr/core';
import { lossGradCheck } from '@fr/core/testing';
import { aSoftmaxLambda, psiInteger, sphereface, spherefaceTransform } from '../src/index.js';
import { backends } from '@fr/test-kit';

const row = { target: 0, context: 0 };

test('defaults: opensphere s 30 m 1.7; A-Softmax m 4 with the annealing of the paper', () => {
  expect(parseLossParams(sphereface, {})).toEqual({ variant: 'opensphere', s: 30, m: 1.7 });
  expect(parseLossParams(sphereface, { variant: 'a-softmax' })).toEqual({
    variant: 'a-softmax', m: 4, base: 1000, gamma: 0.12, power: 1, lambdaMin: 5, startIteration: 0,
  });
  expect(() => parseLossParams(sphereface, { variant: 'a-softmax', m: 1.5 })).toThrow(/sphereface params: m/);
});

test('lambda anneals from 1000 to its floor of 5', () => {
  const p = parseLossParams(sphereface, { variant: 'a-softmax' }) as { base: number; gamma: number; power: number; lambdaMin: number };
  expect(aSoftmaxLambda(p, 0)).toBe(1000);
  expect(aSoftmaxLambda(p, 1000)).toBeCloseTo(1000 / 121, 10);
  expect(aSoftmaxLambda(p, 100_000)).toBe(5);
});

test('psi is (-1)^k cos(m theta) - 2k, monotonically decreasing, with the Chebyshev slope', () => {
  let prev = Infinity;
  for (let i = 0; i <= 200; i++) {
    const theta = (Math.PI * i) / 200;
    const c = Math.cos(theta);
    const [psi, dpsi] = psiInteger(c, 4);
    const k = Math.floor((4 * Math.acos(c)) / 3.14159265);
    expect(psi).toBeCloseTo((k % 2 ? -1 : 1) * Math.cos(4 * Math.acos(c)) - 2 * k, 8);
    expect(psi).toBeLessThanOrEqual(prev + 1e-9);
    prev = psi;
    if (i > 0 && i < 200 && i % 50 !== 0) {
      const h = 1e-6;
      const numeric = (psiInteger(c + h, 4)[0] - psiInteger(c - h, 4)[0]) / (2 * h);
      expect(dpsi).toBeCloseTo(numeric, 3);
    }
  }
  expect(psiInteger(1, 4)).toEqual([1, 16]); // T_4(1) = 1, T_4'(1) = m^2
});

test('opensphere psi at theta = pi - tiny and at m theta > pi', () => {
  const t = spherefaceTransform(30, 1.7);
  const theta = Math.acos(-1 + 1e-5);
  const k = Math.floor((1.7 * theta) / Math.PI);
  expect(t.target(-1, t.uniforms, row)).toBeCloseTo(30 * ((k % 2 ? -1 : 1) * Math.cos(1.7 * theta) - 2 * k), 8);
  expect(t.other(1, t.uniforms, row)).toBeCloseTo(30 * (1 - 1e-5), 10);
});

describe.each(backends)('sphereface on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('A-Softmax: the class-weight gradient agrees with finite differences', async () => {
    // gamma 0 keeps lambda fixed across the evaluations of the check.
    const r = await lossGradCheck(sphereface, {
      backend, params: { variant: 'a-softmax', base: 0.5, gamma: 0, lambdaMin: 0 }, batch: 3, dim: 5, classes: 4, seed: 6, wrt: ['weights'],
    });
    for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
  });

  test('A-Softmax: lambda decreases from one step to the next, raising the loss', async () => {
    const head = sphereface.createHead({ backend, numClasses: 4, embeddingDim: 5, params: parseLossParams(sphereface, { variant: 'a-softmax', gamma: 10 }), rng: createRng(3) });
    const x = tensor(backend, Float32Array.from({ length: 10 }, (_, i) => Math.sin(i + 1)), [2, 5]);
    const labels = Int32Array.from([1, 2]);
    const values: number[] = [];
    for (let i = 0; i < 3; i++) {
      const l = tidy(() => head.forward(x, labels));
      values.push(await l.item());
      l.dispose();
    }
    expect(values[1]).toBeGreaterThan(values[0]);
    expect(values[2]).toBeGreaterThan(values[1]);
    head.dispose();
  });

  test('opensphere: cos = +1 and -1 give finite losses and gradients', async () => {
    const head = sphereface.createHead({ backend, numClasses: 2, embeddingDim: 2, params: parseLossParams(sphereface, {}), rng: createRng(1) });
    backend.write(head.parameters[0].tensor.buffer(), Float32Array.from([1, 0, 0, 1]));
    const x = tensor(backend, [2, 0, -2, 0], [2, 2], { requiresGrad: true });
    const l = tidy(() => {
      const l = head.forward(x, Int32Array.from([0, 0]));
      backward(l);
      return l;
    });
    expect(Number.isFinite(await l.item())).toBe(true);
    expect(Array.from(await x.grad!.data()).every(Number.isFinite)).toBe(true);
    head.dispose();
  });
});
