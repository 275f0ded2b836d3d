/**
 * The layer ops against PyTorch's numbers (test/fixtures/layers, copied from @fr/backend-cpu:
 * float64 references of torch.nn.functional on float32 inputs), forward, backward and running
 * statistics, and the gradient checker over the SIMD kernels, at 1 and 2 threads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { conv2d, createRng, linear, prelu, type Backend, type Tensor } from '@fr/core';
import { checkLayerGolden, gradCheck, type LayerGolden } from '@fr/core/testing';
import { createWasmBackend } from '../src/index.js';

const dir = fileURLToPath(new URL('./fixtures/layers/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

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
      await checkLayerGolden(backend, JSON.parse(readFileSync(dir + file, 'utf8')) as LayerGolden, file);
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
