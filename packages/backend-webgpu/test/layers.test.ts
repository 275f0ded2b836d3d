import type { Conv2dParams } from '@fr/core';
import { hashUniform } from '@fr/core';
import { describe, expect, it } from 'vitest';
import { parity, randomF32 } from './helpers.js';

function conv(batch: number, ic: number, h: number, w: number, oc: number, k: number, stride: number, pad: number, groups: number): Conv2dParams {
  return {
    batch, inChannels: ic, inHeight: h, inWidth: w, outChannels: oc, kernelH: k, kernelW: k, strideH: stride, strideW: stride,
    padH: pad, padW: pad, groups, outHeight: Math.floor((h + 2 * pad - k) / stride) + 1, outWidth: Math.floor((w + 2 * pad - k) / stride) + 1,
  };
}

const CONVS: [string, Conv2dParams][] = [
  ['3x3 s1 p1', conv(2, 3, 9, 7, 5, 3, 1, 1, 1)],
  ['3x3 s2 p1', conv(2, 4, 11, 10, 6, 3, 2, 1, 1)],
  ['1x1 s1 p0', conv(1, 8, 5, 5, 3, 1, 1, 0, 1)],
  ['depthwise 3x3 s2', conv(2, 6, 8, 8, 6, 3, 2, 1, 6)],
  ['grouped 3x3', conv(1, 4, 6, 6, 8, 3, 1, 0, 2)],
];

describe('layer kernels match the CPU backend', () => {
  for (const [name, p] of CONVS) {
    it(`conv2d forward and both backwards: ${name}`, async () => {
      const xs = p.batch * p.inChannels * p.inHeight * p.inWidth;
      const ws = p.outChannels * (p.inChannels / p.groups) * p.kernelH * p.kernelW;
      const os = p.batch * p.outChannels * p.outHeight * p.outWidth;
      const tol = { atol: 1e-5, rtol: 1e-5 };
      await parity({ buffers: { x: randomF32(1, xs), w: randomF32(2, ws), o: new Float32Array(os) }, compare: ['o'], call: (k, b) => k.conv2d(b.x, b.w, b.o, p) }, tol, 'conv2d');
      await parity({ buffers: { g: randomF32(3, os), w: randomF32(2, ws), gx: randomF32(9, xs) }, compare: ['gx'], call: (k, b) => k.conv2dBackwardInput(b.g, b.w, b.gx, p) }, tol, 'conv2dBackwardInput');
      await parity({ buffers: { g: randomF32(3, os), x: randomF32(1, xs), gw: randomF32(9, ws) }, compare: ['gw'], call: (k, b) => k.conv2dBackwardWeight(b.g, b.x, b.gw, p) }, tol, 'conv2dBackwardWeight');
    });
  }

  it('batchNorm and its backward, training and evaluation', async () => {
    for (const [outer, channels, inner] of [[1, 1, 1], [4, 3, 49], [2, 17, 300]]) {
      const n = outer * channels * inner;
      const layout = { outer, channels, inner, eps: 1e-5 };
      for (const training of [true, false]) {
        const p = { ...layout, training };
        const base = {
          x: randomF32(10, n, -2, 3), gamma: randomF32(11, channels, 0.5, 1.5), beta: randomF32(12, channels),
          mean: randomF32(13, channels), variance: randomF32(14, channels, 0.5, 2),
        };
        await parity({ buffers: { ...base, o: new Float32Array(n) }, compare: ['o', 'mean', 'variance'], call: (k, b) => k.batchNorm(b.x, b.gamma, b.beta, b.mean, b.variance, b.o, p) },
          { atol: 1e-5, rtol: 1e-4 }, `batchNorm ${training} ${outer}x${channels}x${inner}`);
        await parity({
          buffers: { g: randomF32(15, n), x: base.x, gamma: base.gamma, mean: base.mean, variance: base.variance, gx: new Float32Array(n), gg: new Float32Array(channels), gb: new Float32Array(channels) },
          compare: ['gx', 'gg', 'gb'],
          call: (k, b) => k.batchNormBackward(b.g, b.x, b.gamma, b.mean, b.variance, b.gx, b.gg, b.gb, p),
        }, { atol: 1e-4, rtol: 1e-4 }, `batchNormBackward ${training}`);
      }
    }
  });

  it('dropout draws the same mask as the CPU backend and the shared hash', async () => {
    for (const [n, prob, seed] of [[1, 0.5, 1], [1000, 0.1, 42], [4097, 0.3, 0xdeadbeef]]) {
      const got = await parity({
        buffers: { x: randomF32(20, n), o: new Float32Array(n), mask: new Float32Array(n) },
        compare: ['o', 'mask'],
        call: (k, b) => k.dropout(b.x, b.o, b.mask, n, prob, seed),
      }, { atol: 0, rtol: 3e-7 }, `dropout ${n}`);
      for (let i = 0; i < n; i++) expect(got.mask[i] !== 0).toBe(hashUniform(seed, i) >= prob);
    }
  });

  it('globalAvgPool and its backward', async () => {
    for (const [outer, channels, inner] of [[1, 1, 1], [3, 5, 49], [2, 512, 7]]) {
      const layout = { outer, channels, inner };
      await parity({ buffers: { x: randomF32(30, outer * channels * inner), o: new Float32Array(outer * channels) }, compare: ['o'], call: (k, b) => k.globalAvgPool(b.x, b.o, layout) }, { atol: 1e-6, rtol: 1e-5 }, 'gap');
      await parity({ buffers: { g: randomF32(31, outer * channels), gx: new Float32Array(outer * channels * inner) }, compare: ['gx'], call: (k, b) => k.globalAvgPoolBackward(b.g, b.gx, layout) }, { atol: 1e-7, rtol: 1e-6 }, 'gapBackward');
    }
  });
});
