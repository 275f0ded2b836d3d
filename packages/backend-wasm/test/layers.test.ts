/**
 * The layer ops against PyTorch's numbers (test/fixtures/layers, copied from @fr/backend-cpu:
 * float64 references of torch.nn.functional on float32 inputs), forward, backward and running
 * statistics, and the gradient checker over the SIMD kernels, at 1 and 2 threads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  backward, batchNorm, conv2d, createRng, l2normalize, linear, mul, prelu, sum, tensor, tidy, type Backend, type Tensor,
} from '@fr/core';
import { gradCheck } from '@fr/core/testing';
import { createWasmBackend } from '../src/index.js';

const dir = fileURLToPath(new URL('./fixtures/layers/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

interface Golden {
  op: string;
  attrs: Record<string, unknown>;
  inputs: Record<string, { shape: number[]; data: number[] }>;
  upstream: { shape: number[]; data: number[] };
  expected: {
    output: { data: number[] } | number[];
    grads: Record<string, { data: number[] } | number[]>;
    runningMean?: { data: number[] } | number[];
    runningVar?: { data: number[] } | number[];
  };
  tolerance: { rtol: number; atol: number };
}

const values = (v: { data: number[] } | number[]): number[] => (Array.isArray(v) ? v : v.data);

function expectClose(got: ArrayLike<number>, want: number[], tol: Golden['tolerance'], what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  expect(err, `${what}: max error`).toBeLessThanOrEqual(tol.atol + tol.rtol * scale);
}

function apply(d: Golden, t: Record<string, Tensor>): Tensor {
  const a = d.attrs as { stride?: number; padding?: number; groups?: number; training?: boolean; momentum?: number; eps?: number };
  switch (d.op) {
    case 'conv2d': return conv2d(t.x, t.weight, { stride: a.stride, padding: a.padding, groups: a.groups });
    case 'batchnorm':
      return batchNorm(t.x, { weight: t.weight, bias: t.bias, runningMean: t.runningMean, runningVar: t.runningVar }, {
        training: a.training ?? false, momentum: a.momentum, eps: a.eps,
      });
    case 'linear': return linear(t.x, t.weight, t.bias);
    case 'prelu': return prelu(t.x, t.weight);
    case 'l2normalize': return l2normalize(t.x);
    default: throw new Error(`unknown op ${d.op}`);
  }
}

function randomInput(shape: number[], seed: number) {
  const rng = createRng(seed);
  return { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()) };
}

describe.each([1, 2])('at %i thread(s)', (threads) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await createWasmBackend({ threads });
  });
  afterAll(() => backend.dispose());

  test('every layer fixture is present', () => expect(files.length).toBe(12));
  for (const file of files) {
    test(`layer golden ${file}`, async () => {
      const d = JSON.parse(readFileSync(dir + file, 'utf8')) as Golden;
      const t: Record<string, Tensor> = {};
      for (const [name, v] of Object.entries(d.inputs)) {
        const stat = name === 'runningMean' || name === 'runningVar';
        t[name] = tensor(backend, v.data, v.shape, { requiresGrad: !stat, name });
      }
      const out = tidy(() => {
        const y = apply(d, t);
        backward(sum(mul(y, tensor(backend, d.upstream.data, d.upstream.shape))));
        return y;
      });
      expectClose(await out.data(), values(d.expected.output), d.tolerance, `${file} output`);
      for (const [name, want] of Object.entries(d.expected.grads)) {
        expectClose(await t[name].grad!.data(), values(want), d.tolerance, `${file} grad ${name}`);
      }
      if (d.expected.runningMean) expectClose(await t.runningMean.data(), values(d.expected.runningMean), d.tolerance, `${file} running mean`);
      if (d.expected.runningVar) expectClose(await t.runningVar.data(), values(d.expected.runningVar), d.tolerance, `${file} running var`);
      for (const v of [...Object.values(t), out]) v.dispose();
    });
  }

  const checks: [string, (x: Tensor[]) => Tensor, { shape: number[]; data: Float32Array }[]][] = [
    ['linear (matmul)', ([x, w, b]) => linear(x, w, b), [randomInput([5, 7], 1), randomInput([6, 7], 2), randomInput([6], 3)]],
    ['conv2d 3x3 (im2col + GEMM)', ([x, w]) => conv2d(x, w, { stride: 1, padding: 1 }), [randomInput([2, 3, 6, 5], 4), randomInput([4, 3, 3, 3], 5)]],
    ['depthwise conv2d (direct)', ([x, w]) => conv2d(x, w, { stride: 2, padding: 1, groups: 4 }), [randomInput([2, 4, 7, 7], 6), randomInput([4, 1, 3, 3], 7)]],
    ['prelu', ([x, s]) => prelu(x, s), [randomInput([2, 3, 4, 4], 8), randomInput([3], 9)]],
  ];
  for (const [name, fn, inputs] of checks) {
    test(`gradient check: ${name}`, async () => {
      const r = await gradCheck(backend, fn, inputs, { maxElements: 24 });
      expect(r.passed, JSON.stringify(r.inputs)).toBe(true);
    });
  }
});
