import { createCpuBackend } from '@fr/backend-cpu';
import { createRng, type Backend, type Conv2dParams, type MatmulParams } from '@fr/core';
import { expectClose } from '@fr/core/testing';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createWasmBackend } from './index.js';

// Shapes large enough to be split over threads (the split is skipped below ~131k multiply-adds).
let one: Backend;
let three: Backend;
const reference = createCpuBackend();
beforeAll(async () => {
  one = await createWasmBackend({ threads: 1 });
  three = await createWasmBackend({ threads: 3 });
});
afterAll(() => {
  one.dispose();
  three.dispose();
  reference.dispose();
});

function random(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

async function runOn(b: Backend, inputs: Float32Array[], outSize: number, initialOut: Float32Array | null, call: (bufs: unknown[], out: unknown) => void): Promise<Float32Array> {
  const r = await runMany(b, inputs, [outSize], initialOut, (bufs, [out]) => call(bufs, out));
  return r;
}

/** Runs `call` on fresh buffers and returns every output, concatenated. */
async function runMany(b: Backend, inputs: Float32Array[], outSizes: number[], initialOut: Float32Array | null, call: (bufs: unknown[], outs: unknown[]) => void): Promise<Float32Array> {
  const bufs = inputs.map((x) => {
    const buf = b.alloc(x.length, 'float32');
    b.write(buf, x);
    return buf;
  });
  const outs = outSizes.map((n) => {
    const out = b.alloc(n, 'float32');
    b.write(out, initialOut ?? new Float32Array(n).fill(Number.NaN));
    return out;
  });
  call(bufs, outs);
  const parts = await Promise.all(outs.map((o, i) => b.read(o, 'float32', outSizes[i])));
  for (const x of [...bufs, ...outs]) b.free(x);
  const all = new Float32Array(outSizes.reduce((a, n) => a + n, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

async function expectExactMany(inputs: Float32Array[], outSizes: number[], call: (b: Backend, bufs: unknown[], outs: unknown[]) => void) {
  const [a, c, want] = await Promise.all([one, three, reference].map((b) => runMany(b, inputs, outSizes, null, (bufs, outs) => call(b, bufs, outs))));
  expect(Buffer.from(c.buffer).equals(Buffer.from(a.buffer))).toBe(true);
  expectClose(a, want, { rtol: 1e-4, atol: 1e-4 });
}

/** Same bits at 1 and 3 threads, and within float32 rounding of the float64 reference. */
async function expectExact(inputs: Float32Array[], outSize: number, initialOut: Float32Array | null, call: (b: Backend, bufs: unknown[], out: unknown) => void) {
  const [a, c, want] = await Promise.all([one, three, reference].map((b) => runOn(b, inputs, outSize, initialOut, (bufs, out) => call(b, bufs, out))));
  expect(Buffer.from(c.buffer).equals(Buffer.from(a.buffer))).toBe(true);
  expectClose(a, want, { rtol: 1e-5, atol: 1e-5 });
}

describe('results do not depend on the thread count', () => {
  // [150, 1100, 520] and [1100, 37, 300] pass the packing blocks (256 deep, 128 rows, 1024 columns), so
  // parts read whole-operand packing at offsets; [203, 700, 1] reads A in place one float deep, with a last panel of 3 rows.
  for (const [m, n, k] of [[67, 301, 129], [301, 67, 129], [128, 1000, 64], [150, 1100, 520], [1100, 37, 300], [203, 700, 1]]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        test(`matmul ${m}x${n}x${k} transA=${transA} transB=${transB}, alpha 0.5, beta 0.25`, async () => {
          const p: MatmulParams = { m, n, k, transA, transB, alpha: 0.5, beta: 0.25 };
          await expectExact([random(m * k, 1), random(k * n, 2)], m * n, random(m * n, 3), (b, [x, y], out) => b.kernels.matmul(x, y, out, p));
        });
      }
    }
  }
  const convs: [string, Conv2dParams][] = [
    ['3x3 pad 1', { batch: 3, inChannels: 16, inHeight: 20, inWidth: 18, outChannels: 24, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 1, outHeight: 20, outWidth: 18 }],
    ['3x3 stride 2', { batch: 2, inChannels: 8, inHeight: 21, inWidth: 21, outChannels: 32, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, groups: 1, outHeight: 11, outWidth: 11 }],
    ['1x1', { batch: 2, inChannels: 32, inHeight: 14, inWidth: 14, outChannels: 48, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1, outHeight: 14, outWidth: 14 }],
    // 1x1: all samples in one task (shared packed weights; per-sample packing for the weight gradient).
    ['1x1 grouped, widening', { batch: 9, inChannels: 16, inHeight: 7, inWidth: 7, outChannels: 80, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 2, outHeight: 7, outWidth: 7 }],
    ['1x1, 300 samples: more parts than one task holds', { batch: 300, inChannels: 16, inHeight: 3, inWidth: 3, outChannels: 16, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1, outHeight: 3, outWidth: 3 }],
    ['grouped 3x3', { batch: 2, inChannels: 16, inHeight: 12, inWidth: 12, outChannels: 32, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 2, outHeight: 12, outWidth: 12 }],
    ['depthwise 3x3', { batch: 2, inChannels: 16, inHeight: 20, inWidth: 19, outChannels: 16, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 16, outHeight: 20, outWidth: 19 }],
    ['depthwise 3x3 stride 2', { batch: 2, inChannels: 16, inHeight: 21, inWidth: 21, outChannels: 16, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, groups: 16, outHeight: 11, outWidth: 11 }],
    ['groups of 2 channels', { batch: 2, inChannels: 16, inHeight: 18, inWidth: 18, outChannels: 16, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 8, outHeight: 18, outWidth: 18 }],
    ['global depthwise 7x7', { batch: 4, inChannels: 64, inHeight: 7, inWidth: 7, outChannels: 64, kernelH: 7, kernelW: 7, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 64, outHeight: 1, outWidth: 1 }],
    ['7x7 no pad (global depthwise-like)', { batch: 2, inChannels: 8, inHeight: 7, inWidth: 7, outChannels: 16, kernelH: 7, kernelW: 7, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1, outHeight: 1, outWidth: 1 }],
  ];
  for (const [name, p] of convs) {
    const xSize = p.batch * p.inChannels * p.inHeight * p.inWidth;
    const wSize = p.outChannels * (p.inChannels / p.groups) * p.kernelH * p.kernelW;
    const oSize = p.batch * p.outChannels * p.outHeight * p.outWidth;
    test(`conv2d ${name}: forward, input gradient, weight gradient`, async () => {
      await expectExact([random(xSize, 4), random(wSize, 5)], oSize, null, (b, [x, w], out) => b.kernels.conv2d(x, w, out, p));
      await expectExact([random(oSize, 6), random(wSize, 7)], xSize, null, (b, [g, w], gx) => b.kernels.conv2dBackwardInput(g, w, gx, p));
      await expectExact([random(oSize, 8), random(xSize, 9)], wSize, null, (b, [g, x], gw) => b.kernels.conv2dBackwardWeight(g, x, gw, p));
    });
  }
  const layout = { outer: 4, channels: 24, inner: 1001 };
  const n = layout.outer * layout.channels * layout.inner;
  test('prelu and batch norm, forward and backward', async () => {
    await expectExactMany([random(n, 10), random(24, 11)], [n], (b, [x, s], [out]) => b.kernels.prelu(x, s, out, layout));
    await expectExactMany([random(n, 12), random(n, 13), random(24, 14)], [n, 24], (b, [g, x, s], [gx, gs]) => b.kernels.preluBackward(g, x, s, gx, gs, layout));
    const bn = { ...layout, eps: 1e-5, training: true };
    await expectExactMany([random(n, 15), random(24, 16), random(24, 17)], [24, 24, n], (b, [x, gamma, beta], [mean, variance, out]) => b.kernels.batchNorm(x, gamma, beta, mean, variance, out, bn));
    const variance = random(24, 20).map((v) => v * v + 0.5);
    await expectExactMany([random(n, 18), random(n, 19), random(24, 21), random(24, 22), variance], [n, 24, 24], (b, [g, x, gamma, mean, v], [gx, gg, gb]) => b.kernels.batchNormBackward(g, x, gamma, mean, v, gx, gg, gb, bn));
  });
  test('binary ops, axpby, the SGD step and row normalisation', async () => {
    const big = 100_003;
    for (const op of ['add', 'sub', 'mul', 'div', 'max', 'min', 'reluBackward'] as const) {
      await expectExactMany([random(big, 30), random(big, 31)], [big], (b, [x, y], [out]) => b.kernels.binary(op, x, y, out, big));
    }
    await expectExactMany([random(big, 32), random(big, 33)], [big], (b, [x, y], [out]) => b.kernels.axpby(x, y, out, big, 0.7, -1.3));
    const sgd = { n: big, lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false };
    await expectExactMany([random(big, 34), random(big, 35), random(big, 36)], [big, big], (b, [w, g, m], [wOut, mOut]) => {
      b.kernels.copy(w, wOut, big, 0, 0);
      b.kernels.copy(m, mOut, big, 0, 0);
      b.kernels.sgdStep(wOut, g, mOut, sgd);
    });
    const [rows, cols] = [301, 517];
    await expectExactMany([random(rows * cols, 37)], [rows * cols, rows], (b, [x], [y, norms]) => b.kernels.l2normalizeRows(x, y, norms, rows, cols, 1e-12));
    const norms = random(rows, 38).map(Math.abs);
    await expectExactMany([random(rows * cols, 39), random(rows * cols, 40), norms], [rows * cols], (b, [g, y, nm], [gx]) => b.kernels.l2normalizeRowsBackward(g, y, nm, gx, rows, cols, 1e-12));
  });
});

describe('the thread pool', () => {
  test('hundreds of tasks in a row, of shapes that split into parts claimed by either thread, keep the bits of one thread', async () => {
    const shapes = [[64, 96, 33], [256, 256, 256], [130, 7, 300], [9, 2000, 17]];
    const inputs = shapes.map(([m, n, k], i) => [random(m * k, 50 + i), random(k * n, 60 + i)]);
    const runAll = async (b: Backend) => {
      const outs: Float32Array[] = [];
      for (let rep = 0; rep < 60; rep++) {
        const i = rep % shapes.length;
        const [m, n, k] = shapes[i];
        outs.push(await runOn(b, inputs[i], m * n, null, ([x, y], out) => b.kernels.matmul(x, y, out, { m, n, k, transA: false, transB: rep % 2 === 1, alpha: 1, beta: 0 })));
      }
      return outs;
    };
    const [a, c] = [await runAll(one), await runAll(three)];
    a.forEach((x, i) => expect(Buffer.from(c[i].buffer).equals(Buffer.from(x.buffer))).toBe(true));
  });

  test('a kernel failing on a worker thread fails the call, and the pool serves the next one', async () => {
    const b = three;
    const x = b.alloc(4, 'float32');
    // A product reading far past the memory traps in the kernel, in every part.
    const p: MatmulParams = { m: 300, n: 300, k: 300, transA: false, transB: false, alpha: 1, beta: 0 };
    const huge = Object.assign(Object.create(Object.getPrototypeOf(x)), x, { ptr: 2 ** 32 - 1024 });
    expect(() => b.kernels.matmul(huge, huge, x, p)).toThrow();
    b.free(x);
    await expectExact([random(67 * 129, 1), random(129 * 301, 2)], 67 * 301, null, (bb, [u, v], out) => bb.kernels.matmul(u, v, out, { m: 67, n: 301, k: 129, transA: false, transB: false, alpha: 1, beta: 0 }));
  });
});
