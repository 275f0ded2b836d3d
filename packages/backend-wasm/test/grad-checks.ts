/**
 * The layer gradient checks the wasm backend runs in Node (layers.test.ts) and in Chromium
 * (browser/page.ts): one per kernel family the tape reaches (GEMM, im2col + GEMM, direct depthwise, PReLU).
 */
import { conv2d, createRng, linear, prelu, type Tensor } from '@fr/core';
import type { GradCheckInput } from '@fr/core/testing';

function randomInput(shape: number[], seed: number): GradCheckInput {
  const rng = createRng(seed);
  return { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()) };
}

export interface LayerGradCheck {
  name: string;
  fn: (x: Tensor[]) => Tensor;
  inputs: GradCheckInput[];
}

export const layerGradChecks: LayerGradCheck[] = [
  { name: 'linear (matmul)', fn: ([x, w, b]) => linear(x, w, b), inputs: [randomInput([5, 7], 1), randomInput([6, 7], 2), randomInput([6], 3)] },
  { name: 'conv2d 3x3 (im2col + GEMM)', fn: ([x, w]) => conv2d(x, w, { stride: 1, padding: 1 }), inputs: [randomInput([2, 3, 6, 5], 4), randomInput([4, 3, 3, 3], 5)] },
  { name: 'depthwise conv2d (direct)', fn: ([x, w]) => conv2d(x, w, { stride: 2, padding: 1, groups: 4 }), inputs: [randomInput([2, 4, 7, 7], 6), randomInput([4, 1, 3, 3], 7)] },
  { name: 'prelu', fn: ([x, s]) => prelu(x, s), inputs: [randomInput([2, 3, 4, 4], 8), randomInput([3], 9)] },
];

/** Elements checked per input: enough to reach every kernel path, few enough for a page. */
export const GRAD_CHECK_ELEMENTS = 24;
