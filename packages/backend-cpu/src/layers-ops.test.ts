/**
 * The layer ops of @fr/core on the CPU backend: gradients against central finite differences,
 * running statistics, train/eval behaviour, the builders and their shape errors.
 */
import { describe, expect, test } from 'vitest';
import {
  backward, batchNorm, batchNorm1d, batchNorm2d, conv2d, createRng, dropout, flatten, globalAvgPool, hashUniform,
  layerBuilder, prelu, sequential, ShapeError, sum, tensor, tidy, type Tensor,
} from '@fr/core';
import { gradCheck, type GradCheckInput } from '@fr/core/testing';
import { createCpuBackend } from './index.js';

const backend = createCpuBackend();

function input(shape: number[], seed: number): GradCheckInput {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    data[i] = (2 * s) / 2147483648 - 1;
  }
  return { shape, data };
}

async function expectGrad(fn: (t: Tensor[]) => Tensor, inputs: GradCheckInput[], maxElements = 40) {
  const r = await gradCheck(backend, fn, inputs, { rtol: 1e-2, atol: 2e-3, maxElements });
  for (const i of r.inputs) expect(i.maxError, JSON.stringify(i)).toBeLessThanOrEqual(i.allowed);
  expect(r.passed).toBe(true);
}

describe('gradients match central differences', () => {
  const convCases = [
    { name: 'k3 s1 p1', x: [2, 3, 6, 5], w: [4, 3, 3, 3], o: { stride: 1, padding: 1 } },
    { name: 'k3 s2 p1 (rectangular input)', x: [2, 4, 7, 6], w: [3, 4, 3, 3], o: { stride: 2, padding: 1 } },
    { name: 'k1 s2', x: [2, 5, 6, 6], w: [6, 5, 1, 1], o: { stride: 2, padding: 0 } },
    { name: 'grouped (2 groups of 4)', x: [1, 8, 5, 5], w: [6, 4, 3, 3], o: { stride: 1, padding: 1, groups: 2 } },
    { name: 'groups of 2 channels', x: [2, 6, 5, 5], w: [6, 2, 3, 3], o: { stride: 1, padding: 1, groups: 3 } },
    { name: 'depthwise k3 s2 p1', x: [2, 4, 7, 7], w: [4, 1, 3, 3], o: { stride: 2, padding: 1, groups: 4 } },
    { name: 'stride [2, 1], padding [0, 1]', x: [1, 2, 7, 5], w: [3, 2, 3, 2], o: { stride: [2, 1] as [number, number], padding: [0, 1] as [number, number] } },
  ];
  for (const c of convCases) {
    test(`conv2d ${c.name}`, async () => {
      await expectGrad(([x, w]) => conv2d(x, w, c.o), [input(c.x, 1), input(c.w, 2)]);
    });
  }

  const bnCases = [
    { name: 'batchNorm2d training', x: [3, 2, 3, 3], training: true },
    { name: 'batchNorm2d evaluation', x: [2, 3, 2, 2], training: false },
    { name: 'batchNorm1d training', x: [5, 4], training: true },
  ];
  for (const c of bnCases) {
    test(c.name, async () => {
      const C = c.x[1];
      const mean = tensor(backend, Float32Array.from({ length: C }, (_, i) => 0.1 * i), [C]);
      const variance = tensor(backend, Float32Array.from({ length: C }, (_, i) => 0.5 + 0.3 * i), [C]);
      await expectGrad(([x, weight, bias]) => batchNorm(x, { weight, bias, runningMean: mean, runningVar: variance }, { training: c.training }), [
        input(c.x, 3), { shape: [C], data: Float32Array.from({ length: C }, (_, i) => 0.5 + 0.25 * i) }, input([C], 5),
      ]);
    });
  }

  test('dropout (fixed seed: the mask is a constant of the function)', async () => {
    await expectGrad(([x]) => dropout(x, 0.4, 99, true), [input([4, 10], 7)]);
  });

  test('globalAvgPool', async () => {
    await expectGrad(([x]) => globalAvgPool(x), [input([2, 3, 4, 3], 8)]);
  });

  test('flatten', async () => {
    await expectGrad(([x]) => flatten(x), [input([2, 3, 2, 2], 9)]);
  });

  test('a conv-bn-prelu-pool chain', async () => {
    const rm = tensor(backend, [0, 0, 0], [3]), rv = tensor(backend, [1, 1, 1], [3]);
    await expectGrad(([x, w, g, b, s]) => {
      const h = batchNorm2d(conv2d(x, w, { stride: 2, padding: 1 }), { weight: g, bias: b, runningMean: rm, runningVar: rv }, { training: true });
      return globalAvgPool(prelu(h, s));
    }, [input([3, 2, 5, 5], 10), input([3, 2, 3, 3], 11), input([3], 12), input([3], 13), input([3], 14)]);
  });
});

describe('batch norm statistics', () => {
  test('training updates running stats with momentum 0.1 and the unbiased variance; eval uses them', async () => {
    const x = tensor(backend, [1, 2, 3, 4, 10, 20, 30, 40], [4, 2]);
    const s = {
      weight: tensor(backend, [1, 1], [2]), bias: tensor(backend, [0, 0], [2]),
      runningMean: tensor(backend, [0, 0], [2]), runningVar: tensor(backend, [1, 1], [2]),
    };
    batchNorm1d(x, s, { training: true });
    // Channel 0: 1, 3, 10, 30; channel 1: 2, 4, 20, 40.
    const stats = (v: number[]) => {
      const m = v.reduce((a, b) => a + b) / v.length;
      return { m, unbiased: v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1) };
    };
    const c0 = stats([1, 3, 10, 30]), c1 = stats([2, 4, 20, 40]);
    const rm = await s.runningMean.data(), rv = await s.runningVar.data();
    expect(rm[0]).toBeCloseTo(0.1 * c0.m, 5);
    expect(rm[1]).toBeCloseTo(0.1 * c1.m, 5);
    expect(rv[0]).toBeCloseTo(0.9 + 0.1 * c0.unbiased, 4);
    expect(rv[1]).toBeCloseTo(0.9 + 0.1 * c1.unbiased, 4);
    const y = await batchNorm1d(x, s, { training: false }).data();
    expect(y[0]).toBeCloseTo((1 - rm[0]) / Math.sqrt(rv[0] + 1e-5), 5);
    // Evaluation leaves the running statistics alone.
    expect(Array.from(await s.runningMean.data())).toEqual(Array.from(rm));
  });

  test('training with one value per channel is refused', () => {
    const x = tensor(backend, [1, 2], [1, 2]);
    const s = { weight: tensor(backend, [1, 1], [2]), bias: tensor(backend, [0, 0], [2]), runningMean: tensor(backend, [0, 0], [2]), runningVar: tensor(backend, [1, 1], [2]) };
    expect(() => batchNorm1d(x, s, { training: true })).toThrow(/more than one value per channel/);
  });
});

describe('dropout', () => {
  test('evaluation and p = 0 are the identity; training drops with the shared hash', async () => {
    const x = tensor(backend, Float32Array.from({ length: 64 }, () => 1), [8, 8]);
    expect(dropout(x, 0.5, 1, false)).toBe(x);
    expect(dropout(x, 0, 1, true)).toBe(x);
    const y = await dropout(x, 0.5, 1, true).data();
    for (let i = 0; i < 64; i++) expect(y[i]).toBe(hashUniform(1, i) >= 0.5 ? 2 : 0);
  });
});

describe('shape errors name the tensor and the expected shape', () => {
  test('conv2d weight of the wrong depth', () => {
    const x = tensor(backend, new Float32Array(2 * 4 * 5 * 5), [2, 4, 5, 5], { name: 'img' });
    const w = tensor(backend, new Float32Array(3 * 3 * 9), [3, 3, 3, 3], { name: 'stem.weight' });
    expect(() => conv2d(x, w, { padding: 1 })).toThrow(ShapeError);
    expect(() => conv2d(x, w, { padding: 1 })).toThrow(/"stem.weight".*expected \[3, 4, 3, 3\]/);
  });
  test('conv2d on a 2-d input', () => {
    const x = tensor(backend, new Float32Array(8), [2, 4], { name: 'emb' });
    const w = tensor(backend, new Float32Array(4 * 4), [4, 4, 1, 1]);
    expect(() => conv2d(x, w)).toThrow(/"emb".*\[N, C, H, W\]/);
  });
  test('groups that do not divide the channels', () => {
    const x = tensor(backend, new Float32Array(6 * 4), [1, 6, 2, 2]);
    const w = tensor(backend, new Float32Array(4 * 6), [4, 6, 1, 1]);
    expect(() => conv2d(x, w, { groups: 4 })).toThrow(/groups=4 must divide/);
  });
  test('batch norm with the wrong channel count', () => {
    const x = tensor(backend, new Float32Array(2 * 3 * 4), [2, 3, 2, 2], { name: 'feat' });
    const s = { weight: tensor(backend, [1, 1], [2], { name: 'bn.weight' }), bias: tensor(backend, [0, 0, 0], [3]), runningMean: tensor(backend, [0, 0, 0], [3]), runningVar: tensor(backend, [1, 1, 1], [3]) };
    expect(() => batchNorm2d(x, s, { training: false })).toThrow(/"bn.weight".*must have shape \[3\].*"feat"/);
    expect(() => batchNorm1d(x, s, { training: false })).toThrow(/batchNorm1d: input must be \[N, C\]/);
  });
  test('a builder linear layer fed the wrong width', () => {
    const b = layerBuilder(backend, createRng(1));
    const fc = b.scope('head').linear('fc', 6, 3);
    const x = tensor(backend, new Float32Array(10), [2, 5]);
    expect(() => fc.forward(x, { training: false })).toThrow(/linear head\.fc: expected input \[N, 6\]/);
  });
});

describe('layer builder', () => {
  test('PyTorch names, frozen scales, buffers and a trainable module', async () => {
    const b = layerBuilder(backend, createRng(5));
    const block = b.scope('layer1').scope(0);
    const net = sequential(
      b.conv2d('conv1', { inChannels: 3, outChannels: 4, kernel: 3, padding: 1, stride: 2 }),
      b.batchNorm('bn1', 4),
      b.prelu('prelu', 4),
      block.conv2d('conv1', { inChannels: 4, outChannels: 4, kernel: 3, padding: 1, groups: 4 }),
      { forward: (x) => globalAvgPool(x) },
      b.dropout(0.2),
      b.linear('fc', 4, 2),
      b.batchNorm('features', 2, { frozenScale: true }),
    );
    const m = b.module((x, mode) => net.forward(x, mode));
    expect(m.parameters.map((p) => p.name)).toEqual([
      'conv1.weight', 'bn1.weight', 'bn1.bias', 'prelu.weight', 'layer1.0.conv1.weight', 'fc.weight', 'fc.bias', 'features.weight', 'features.bias',
    ]);
    expect(m.buffers.map((p) => p.name)).toEqual(['bn1.running_mean', 'bn1.running_var', 'features.running_mean', 'features.running_var']);
    expect(m.parameters.find((p) => p.name === 'features.weight')!.tensor.requiresGrad).toBe(false);
    expect(m.parameters.find((p) => p.name === 'layer1.0.conv1.weight')!.tensor.shape).toEqual([4, 1, 3, 3]);
    // PyTorch's default conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 27.
    const w = await m.parameters[0].tensor.data();
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(27));
    expect(() => b.prelu('prelu', 4)).toThrow(/two tensors are named prelu.weight/);

    const x = tensor(backend, input([4, 3, 8, 8], 4).data, [4, 3, 8, 8]);
    tidy(() => {
      const y = m.forward(x, { training: true, seed: 3 });
      expect(y.shape).toEqual([4, 2]);
      backward(sum(y));
    });
    for (const p of m.parameters) {
      if (p.name === 'features.weight') expect(p.tensor.grad).toBeNull();
      else expect(p.tensor.grad, p.name).not.toBeNull();
    }
    const e1 = await m.forward(x, { training: false }).data();
    const e2 = await m.forward(x, { training: false }).data();
    expect(Array.from(e1)).toEqual(Array.from(e2));
    m.dispose();
    expect(m.parameters[0].tensor.disposed).toBe(true);
  });
});
