import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, parseLossParams, tensor, tidy, type Backend } from '@fr/core';
import { x2softmax, x2softmaxTransform } from '../src/index.js';
import { backends } from '@fr/test-kit';

const row = { target: 0, context: 0 };

test('target logit s (a (theta - h)^2 + k), clamped before acos', () => {
  const p = parseLossParams(x2softmax, {});
  expect(p).toEqual({ s: 64, a: -0.9, h: 0, k: 0.65 });
  const t = x2softmaxTransform(p);
  expect(t.target(1, t.uniforms, row)).toBeCloseTo(64 * 0.65, 10); // the vertex: theta = h = 0
  expect(t.target(-1, t.uniforms, row)).toBeCloseTo(64 * (-0.9 * Math.PI ** 2 + 0.65), 10);
  expect(t.target(1 + 1e-7, t.uniforms, row)).toBeCloseTo(64 * 0.65, 10); // no NaN past 1
  expect(t.target(0, t.uniforms, row)).toBeCloseTo(64 * (-0.9 * (Math.PI / 2) ** 2 + 0.65), 10);
  expect(t.targetGrad(0.2, t.uniforms, row)).toBe(64); // detached
});

describe.each(backends)('x2softmax on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('aligned and opposite embeddings give finite losses and gradients', async () => {
    const head = x2softmax.createHead({ backend, numClasses: 2, embeddingDim: 2, params: parseLossParams(x2softmax, {}), rng: createRng(1) });
    backend.write(head.parameters[0].tensor.buffer(), Float32Array.from([1, 0, 0, 1]));
    const x = tensor(backend, [2, 0, -2, 0], [2, 2], { requiresGrad: true });
    const l = tidy(() => {
      const l = head.forward(x, Int32Array.from([0, 0]));
      backward(l);
      return l;
    });
    const ce = (zy: number) => Math.log(Math.exp(zy) + 1) - zy;
    expect(await l.item()).toBeCloseTo((ce(64 * 0.65) + ce(64 * (-0.9 * Math.PI ** 2 + 0.65))) / 2, 3);
    expect(Array.from(await x.grad!.data()).every(Number.isFinite)).toBe(true);
    head.dispose();
  });
});
