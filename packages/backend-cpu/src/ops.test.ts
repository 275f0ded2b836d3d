import { describe, expect, test } from 'vitest';
import {
  add, addRowVector, affine, concatCols, gatherRows, identityTransform, l2normalize, linear, marginLoss, matmul, mean, mul,
  prelu, relu, reshape, scale, scaledTransform, sliceCols, sub, sum, sumAxis, tensor, unary, type Tensor,
} from '@fr/core';
import { conformanceTransform, gradCheck, type GradCheckInput } from '@fr/core/testing';
import { createCpuBackend } from './index.js';

const backend = createCpuBackend();

function input(shape: number[], seed: number, positive = false): GradCheckInput {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const u = s / 2147483648;
    data[i] = positive ? 0.5 + u : 2 * u - 1;
  }
  return { shape, data };
}

async function expectGrad(fn: (t: Tensor[]) => Tensor, inputs: GradCheckInput[], rtol = 1e-2) {
  const r = await gradCheck(backend, fn, inputs, { rtol, atol: 2e-3 });
  for (const i of r.inputs) expect(i.maxError, JSON.stringify(i)).toBeLessThanOrEqual(i.allowed);
  expect(r.passed).toBe(true);
}

describe('gradients of every op match central differences', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      test(`matmul transA=${transA} transB=${transB}`, async () => {
        const a = input(transA ? [5, 3] : [3, 5], 1);
        const b = input(transB ? [4, 5] : [5, 4], 2);
        await expectGrad(([x, y]) => matmul(x, y, { transA, transB }), [a, b]);
      });
    }
  }
  test('add, sub, mul', async () => {
    await expectGrad(([a, b]) => add(a, b), [input([3, 4], 1), input([3, 4], 2)]);
    await expectGrad(([a, b]) => sub(a, b), [input([3, 4], 3), input([3, 4], 4)]);
    await expectGrad(([a, b]) => mul(a, b), [input([3, 4], 5), input([3, 4], 6)]);
    await expectGrad(([a]) => mul(a, a), [input([7], 8)]);
  });
  test('affine, scale, relu', async () => {
    await expectGrad(([a]) => affine(a, -2.5, 1), [input([6], 1)]);
    await expectGrad(([a]) => scale(a, 3), [input([6], 2)]);
    await expectGrad(([a]) => relu(a), [input([2, 9], 3)]);
  });
  for (const op of ['neg', 'exp', 'tanh', 'sigmoid', 'square', 'abs'] as const) {
    test(`unary ${op}`, async () => expectGrad(([a]) => unary(op, a), [input([11], 4)]));
  }
  for (const op of ['log', 'sqrt'] as const) {
    test(`unary ${op}`, async () => expectGrad(([a]) => unary(op, a), [input([11], 5, true)]));
  }
  test('addRowVector, sum, mean, sumAxis, reshape', async () => {
    await expectGrad(([x, v]) => addRowVector(x, v), [input([4, 3], 1), input([3], 2)]);
    await expectGrad(([x]) => sum(x), [input([4, 3], 3)]);
    await expectGrad(([x]) => mean(x), [input([4, 3], 4)]);
    await expectGrad(([x]) => sumAxis(x, 0), [input([4, 3], 5)]);
    await expectGrad(([x]) => sumAxis(x, 1), [input([4, 3], 6)]);
    await expectGrad(([x]) => reshape(x, [3, 4]), [input([4, 3], 7)]);
  });
  test('l2normalize', async () => expectGrad(([x]) => l2normalize(x), [input([5, 6], 1)]));
  test('sliceCols, concatCols, gatherRows', async () => {
    await expectGrad(([x]) => sliceCols(x, 1, 3), [input([3, 6], 1)]);
    await expectGrad(([a, b]) => concatCols([a, b, a]), [input([3, 2], 2), input([3, 4], 3)]);
    await expectGrad(([x]) => gatherRows(x, tensor(backend, Int32Array.of(3, 0, 2), [3])), [input([5, 4], 4)]);
  });
  test('prelu and linear', async () => {
    await expectGrad(([x, s]) => prelu(x, s), [input([2, 3, 4], 1), input([3], 2)]);
    await expectGrad(([x, w, b]) => linear(x, w, b), [input([4, 5], 3), input([3, 5], 4), input([3], 5)]);
  });
  for (const transform of [identityTransform, scaledTransform(4), conformanceTransform]) {
    for (const reducer of ['softmax-ce', 'sigmoid-ova'] as const) {
      test(`marginLoss ${transform.key} ${reducer} (exact transforms), through normalisation`, async () => {
        const labels = tensor(backend, Int32Array.of(2, 0, 4), [3]);
        const ctx = tensor(backend, [0.5, -1, 2], [3]);
        await expectGrad(
          ([x, w, b]) => {
            const cos = matmul(l2normalize(x), l2normalize(w), { transB: true });
            return marginLoss(cos, labels, { transform, reducer, scale: 1 / 3, positiveWeight: 0.7, negativeWeight: 0.3, rowContext: ctx, bias: reducer === 'sigmoid-ova' ? b : null });
          },
          [input([3, 6], 11), input([5, 6], 12), { shape: [1], data: Float32Array.of(-1.5) }],
        );
      });
    }
  }
});

describe('op values', () => {
  test('matmul of known matrices', async () => {
    const a = tensor(backend, [1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tensor(backend, [7, 8, 9, 10, 11, 12], [3, 2]);
    expect(Array.from(await matmul(a, b).data())).toEqual([58, 64, 139, 154]);
    expect(Array.from(await matmul(a, a, { transB: true }).data())).toEqual([14, 32, 32, 77]);
    expect(Array.from(await matmul(a, a, { transA: true }).data())).toEqual([17, 22, 27, 22, 29, 36, 27, 36, 45]);
  });
  test('blocked matmul equals the naive triple loop on awkward shapes', async () => {
    for (const [m, n, k] of [[9, 13, 17], [4, 4, 1], [1, 33, 8], [67, 5, 130]]) {
      const A = input([m, k], m), B = input([k, n], n);
      const got = await matmul(tensor(backend, A.data, A.shape), tensor(backend, B.data, B.shape)).data();
      let worst = 0;
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += A.data[i * k + t] * B.data[t * n + j];
        worst = Math.max(worst, Math.abs(s - got[i * n + j]));
      }
      expect(worst).toBeLessThan(1e-5);
    }
  });
  test('softmax cross-entropy of known logits', async () => {
    const z = tensor(backend, [1, 2, 3, 0, 0, 0], [2, 3]);
    const y = tensor(backend, Int32Array.of(2, 1), [2]);
    const loss = await marginLoss(z, y, { transform: identityTransform, reducer: 'softmax-ce', scale: 0.5 }).item();
    const lse1 = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    expect(loss).toBeCloseTo(((lse1 - 3) + Math.log(3)) / 2, 6);
  });
  test('softmax cross-entropy stays finite for huge logits', async () => {
    const z = tensor(backend, [1000, -1000, 0], [1, 3]);
    const y = tensor(backend, Int32Array.of(1), [1]);
    const loss = await marginLoss(z, y, { transform: identityTransform, reducer: 'softmax-ce', scale: 1 }).item();
    expect(loss).toBeCloseTo(2000, 3);
  });
});
