import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, parseLossParams, tensor, tidy, type Backend } from '@fr/core';
import { curricularface, curricularTransform } from '../src/index.js';
import { backends } from '@fr/test-kit';

const cosM = (c: number) => Math.cos(Math.acos(c) + 0.5);

test('hard negatives (cos above the target margin cosine) become cos (t + cos)', () => {
  const tr = curricularTransform(64, 0.5);
  const row = { target: 0.6, context: 0.2 };
  expect(tr.other(0.5, tr.uniforms, row)).toBeCloseTo(64 * 0.5 * 0.7, 10); // 0.5 > cos(acos 0.6 + 0.5) = 0.24
  expect(tr.otherGrad(0.5, tr.uniforms, row)).toBeCloseTo(64 * 1.2, 10);
  expect(tr.other(0.1, tr.uniforms, row)).toBeCloseTo(6.4, 10); // easy negative
  expect(tr.target(0.6, tr.uniforms, row)).toBeCloseTo(64 * cosM(0.6), 10);
  expect(tr.target(-1, tr.uniforms, row)).toBeCloseTo(64 * (-1 - 0.5 * Math.sin(0.5)), 10);
});

describe.each(backends)('curricularface on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('t follows the EMA of target cosines, and the loss matches a float64 reference', async () => {
    const head = curricularface.createHead({ backend, numClasses: 3, embeddingDim: 2, params: parseLossParams(curricularface, {}), rng: createRng(1) });
    const a = [0, Math.PI / 2, (3 * Math.PI) / 4];
    backend.write(head.parameters[0].tensor.buffer(), Float32Array.from(a.flatMap((v) => [Math.cos(v), Math.sin(v)])));
    const xa = [0.3, 1.2];
    const x = tensor(backend, xa.flatMap((v) => [2 * Math.cos(v), 2 * Math.sin(v)]), [2, 2], { requiresGrad: true });
    const labels = Int32Array.from([1, 1]); // row 0 has a hard negative (class 0)
    const l = tidy(() => {
      const l = head.forward(x, labels);
      backward(l);
      return l;
    });
    const cos = xa.map((v) => a.map((w) => Math.cos(v - w)));
    const t = 0.01 * ((cos[0][1] + cos[1][1]) / 2);
    expect(cos[0][0]).toBeGreaterThan(cosM(cos[0][1]));
    expect((await head.buffers[0].tensor.data())[0]).toBeCloseTo(t, 6);
    let want = 0;
    cos.forEach((row, i) => {
      const y = labels[i];
      const logits = row.map((c, j) => 64 * (j === y ? cosM(c) : c > cosM(row[y]) ? c * (t + c) : c));
      const mx = Math.max(...logits);
      want += (mx + Math.log(logits.reduce((s, v) => s + Math.exp(v - mx), 0)) - logits[y]) / 2;
    });
    expect(await l.item()).toBeCloseTo(want, 3);
    expect(Array.from(await x.grad!.data()).every(Number.isFinite)).toBe(true);
    head.dispose();
  });
});
