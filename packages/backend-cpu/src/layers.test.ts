/**
 * The layer kernels against PyTorch's numbers (test/fixtures/layers, float64 references of
 * torch.nn.functional on float32 inputs), through the ops of @fr/core so that forward, backward
 * and the running-statistics update are all covered.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { checkLayerGolden, expectClose, type LayerGolden } from '@fr/core/testing';
import { backward, batchNorm, conv2d, empty, hashUniform, tensor } from '@fr/core';
import { createCpuBackend } from './index.js';

const dir = fileURLToPath(new URL('../test/fixtures/layers/', import.meta.url));
const backend = createCpuBackend();

const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

describe('layer ops match PyTorch (golden fixtures)', () => {
  test('every fixture is covered', () => {
    expect(files.length).toBe(12);
  });
  for (const file of files) {
    test(file, async () => {
      await checkLayerGolden(backend, JSON.parse(readFileSync(dir + file, 'utf8')) as LayerGolden, file);
    });
  }
});

describe('kernels', () => {
  test('dropout mask is hashUniform(seed, i) >= p, scaled by 1/(1-p)', async () => {
    const n = 4096, p = 0.3, seed = 1234;
    const x = tensor(backend, Float32Array.from({ length: n }, (_, i) => i + 1), [n]);
    const out = empty(backend, [n]);
    const mask = empty(backend, [n]);
    backend.kernels.dropout(x.buffer(), out.buffer(), mask.buffer(), n, p, seed);
    const m = await mask.data(), o = await out.data();
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const want = hashUniform(seed, i) >= p ? 1 / (1 - p) : 0;
      expect(m[i]).toBeCloseTo(want, 6);
      expect(o[i]).toBeCloseTo((i + 1) * want, 3);
      if (want > 0) kept++;
    }
    expect(kept / n).toBeGreaterThan(0.65);
    expect(kept / n).toBeLessThan(0.75);
  });

  test('globalAvgPool and its backward', async () => {
    const x = tensor(backend, [1, 2, 3, 4, 10, 20, 30, 40, 5, 5, 5, 5, 0, 0, 0, 8], [2, 2, 2, 2]);
    const out = empty(backend, [2, 2]);
    backend.kernels.globalAvgPool(x.buffer(), out.buffer(), { outer: 2, channels: 2, inner: 4 });
    expect(Array.from(await out.data())).toEqual([2.5, 25, 5, 2]);
    const g = tensor(backend, [4, 8, -4, 2], [2, 2]);
    const gx = empty(backend, [2, 2, 2, 2]);
    backend.kernels.globalAvgPoolBackward(g.buffer(), gx.buffer(), { outer: 2, channels: 2, inner: 4 });
    expect(Array.from(await gx.data())).toEqual([1, 1, 1, 1, 2, 2, 2, 2, -1, -1, -1, -1, 0.5, 0.5, 0.5, 0.5]);
  });

  test('batchNorm kernel in training writes batch mean and biased variance', async () => {
    // One channel, values 1..4: mean 2.5, biased variance 1.25.
    const x = tensor(backend, [1, 2, 3, 4], [4, 1]);
    const gamma = tensor(backend, [2], [1]);
    const beta = tensor(backend, [1], [1]);
    const mean = empty(backend, [1]), variance = empty(backend, [1]), out = empty(backend, [4, 1]);
    backend.kernels.batchNorm(x.buffer(), gamma.buffer(), beta.buffer(), mean.buffer(), variance.buffer(), out.buffer(), {
      outer: 4, channels: 1, inner: 1, eps: 0, training: true,
    });
    expect(await mean.item()).toBeCloseTo(2.5, 6);
    expect(await variance.item()).toBeCloseTo(1.25, 6);
    const s = Math.sqrt(1.25);
    const o = await out.data();
    [1, 2, 3, 4].forEach((v, i) => expect(o[i]).toBeCloseTo(2 * ((v - 2.5) / s) + 1, 5));
  });
});

/** A plain 7-loop convolution, the definition the fast kernels must agree with. */
function naiveConv(x: Float32Array, w: Float32Array, s: number[], ws: number[], stride: [number, number], pad: [number, number], groups: number) {
  const [N, C, H, W] = s, [O, cg, kh, kw] = ws;
  const Ho = Math.floor((H + 2 * pad[0] - kh) / stride[0]) + 1, Wo = Math.floor((W + 2 * pad[1] - kw) / stride[1]) + 1;
  const og = O / groups;
  const out = new Float64Array(N * O * Ho * Wo);
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oy = 0; oy < Ho; oy++) for (let ox = 0; ox < Wo; ox++) {
    let acc = 0;
    const g = Math.floor(o / og);
    for (let ci = 0; ci < cg; ci++) for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
      const iy = oy * stride[0] - pad[0] + ky, ix = ox * stride[1] - pad[1] + kx;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      acc += x[((n * C + g * cg + ci) * H + iy) * W + ix] * w[((o * cg + ci) * kh + ky) * kw + kx];
    }
    out[((n * O + o) * Ho + oy) * Wo + ox] = acc;
  }
  return { out, shape: [N, O, Ho, Wo] };
}

describe('conv2d agrees with the naive definition', () => {
  const cases: { name: string; x: number[]; w: number[]; stride: [number, number]; pad: [number, number]; groups: number }[] = [
    { name: 'rectangular stride and padding', x: [2, 3, 9, 7], w: [5, 3, 3, 2], stride: [2, 1], pad: [1, 0], groups: 1 },
    { name: 'groups of 2 channels (MobileFaceNet)', x: [2, 8, 6, 6], w: [8, 2, 3, 3], stride: [1, 1], pad: [1, 1], groups: 4 },
    { name: 'depthwise multiplier 2', x: [1, 3, 5, 5], w: [6, 1, 3, 3], stride: [2, 2], pad: [1, 1], groups: 3 },
    { name: 'batch chunking of a big im2col', x: [40, 16, 32, 32], w: [8, 16, 3, 3], stride: [1, 1], pad: [1, 1], groups: 1 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      let seed = 3;
      const rand = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1);
      const xd = rand(c.x.reduce((a, b) => a * b, 1)), wd = rand(c.w.reduce((a, b) => a * b, 1));
      const want = naiveConv(xd, wd, c.x, c.w, c.stride, c.pad, c.groups);
      const x = tensor(backend, xd, c.x), w = tensor(backend, wd, c.w);
      const y = conv2d(x, w, { stride: c.stride, padding: c.pad, groups: c.groups });
      expect(y.shape).toEqual(want.shape);
      expectClose(await y.data(), Array.from(want.out), { rtol: 1e-5, atol: 1e-5 }, c.name);
    });
  }
});
