import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, DataError, parseLossParams, tensor, tidy, type Backend, type Loss } from '@fr/core';
import { lossGradCheck } from '@fr/core/testing';
import { alphaLowerBound, l2softmax, normface, softmax } from '../src/index.js';
import { backends } from '@fr/test-kit';

test('alphaLowerBound is log(p (C - 2) / (1 - p))', () => {
  expect(alphaLowerBound(10, 0.9)).toBeCloseTo(Math.log(72), 12);
  expect(alphaLowerBound(10_000, 0.9)).toBeCloseTo(Math.log(89_982), 10);
  expect(() => alphaLowerBound(2, 0.9)).toThrow(/more than 2 classes/);
  expect(() => alphaLowerBound(10, 1)).toThrow(/p must be in \(0, 1\)/);
});

test('schemas carry the defaults', () => {
  expect(parseLossParams(softmax, {})).toEqual({ bias: false });
  expect(parseLossParams(l2softmax, {})).toEqual({ alpha: 16 });
  expect(parseLossParams(normface, {})).toEqual({ s: 30 });
  expect(() => parseLossParams(l2softmax, { alpha: -1 })).toThrow(/l2softmax params: alpha/);
});

describe.each(backends)('softmax family on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  const exact: [string, Loss<any>, Record<string, unknown>][] = [
    ['softmax', softmax, {}],
    ['softmax with bias', softmax, { bias: true }],
    ['l2softmax', l2softmax, { alpha: 4 }],
    ['normface', normface, { s: 8 }],
  ];
  test.each(exact)('%s: gradients agree with finite differences', async (_n, loss, params) => {
    const r = await lossGradCheck(loss, { backend, params, batch: 3, dim: 5, classes: 4, seed: 8 });
    for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
  });

  test('the l2softmax bias gets the column sums of softmax - onehot', async () => {
    const head = l2softmax.createHead({ backend, numClasses: 3, embeddingDim: 2, params: { alpha: 1 }, rng: createRng(1) });
    backend.write(head.parameters[0].tensor.buffer(), new Float32Array(6)); // W = 0: uniform probabilities
    const x = tensor(backend, [1, 0, 0, 1], [2, 2]);
    tidy(() => {
      const l = head.forward(x, Int32Array.from([0, 0]));
      backward(l);
      return l;
    }).dispose();
    const gb = await head.parameters[1].tensor.grad!.data();
    // mean over 2 rows of (1/3 - onehot): class 0 gets 1/3 - 1, others 1/3.
    expect(Array.from(gb).map((v) => +v.toFixed(6))).toEqual([-0.666667, 0.333333, 0.333333]);
    head.dispose();
  });

  test('one class: zero loss; labels out of range: DataError', async () => {
    const head = normface.createHead({ backend, numClasses: 1, embeddingDim: 3, params: { s: 30 }, rng: createRng(1) });
    const x = tensor(backend, [1, 2, 3, -1, 0, 2], [2, 3]);
    const l = tidy(() => head.forward(x, Int32Array.from([0, 0])));
    expect(await l.item()).toBe(0);
    expect(() => tidy(() => head.forward(x, Int32Array.from([0, 1])))).toThrow(DataError);
    expect(() => tidy(() => head.forward(x, Int32Array.from([0, 1])))).toThrow(/label 1 at row 1 is outside \[0, 1\)/);
    head.dispose();
  });
});
