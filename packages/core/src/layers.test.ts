/**
 * Backend-free parts of the layer ops: the convolution shape rules and their errors, and PyTorch's
 * default initialiser. The kernels and gradients are tested on a backend, in @fr/backend-cpu.
 */
import { describe, expect, test } from 'vitest';
import { ShapeError } from './errors.js';
import { conv2dParams, torchDefaultInit } from './layers.js';
import { createRng } from './rng.js';

describe('conv2dParams', () => {
  test('output sizes follow floor((H + 2p - k) / s) + 1', () => {
    const p = conv2dParams([8, 3, 112, 112], [64, 3, 3, 3], { stride: 1, padding: 1 });
    expect([p.outHeight, p.outWidth]).toEqual([112, 112]);
    const q = conv2dParams([8, 64, 112, 112], [64, 64, 3, 3], { stride: 2, padding: 1 });
    expect([q.outHeight, q.outWidth]).toEqual([56, 56]);
    const r = conv2dParams([2, 512, 7, 7], [512, 1, 7, 7], { groups: 512 });
    expect([r.outHeight, r.outWidth, r.groups]).toEqual([1, 1, 512]);
    const s = conv2dParams([1, 2, 9, 6], [4, 2, 3, 2], { stride: [2, 1], padding: [1, 0] });
    expect([s.strideH, s.strideW, s.padH, s.padW, s.outHeight, s.outWidth]).toEqual([2, 1, 1, 0, 5, 5]);
  });

  test('bad shapes are ShapeErrors that say what was expected', () => {
    expect(() => conv2dParams([1, 4, 5, 5], [8, 2, 3, 3], {}, { x: 'x', w: 'conv.weight' })).toThrow(ShapeError);
    expect(() => conv2dParams([1, 4, 5, 5], [8, 2, 3, 3], {}, { x: 'x', w: 'conv.weight' })).toThrow(
      'conv2d: conv.weight has shape [8, 2, 3, 3], expected [8, 4, 3, 3] for x [1, 4, 5, 5] with groups=1',
    );
    expect(() => conv2dParams([1, 4, 5], [8, 4, 3, 3])).toThrow(/input must be \[N, C, H, W\], got \[1, 4, 5\]/);
    expect(() => conv2dParams([1, 6, 5, 5], [8, 2, 3, 3], { groups: 4 })).toThrow(/groups=4 must divide the input channels \(6/);
    expect(() => conv2dParams([1, 4, 2, 2], [8, 4, 5, 5])).toThrow(/kernel 5x5 .* does not fit/);
    expect(() => conv2dParams([1, 4, 5, 5], [8, 4, 3, 3], { stride: 0 })).toThrow(/stride must be at least 1/);
  });
});

describe('torchDefaultInit', () => {
  test('is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the right spread', () => {
    const w = torchDefaultInit(createRng(3), [64, 32, 3, 3]);
    const bound = 1 / Math.sqrt(32 * 9);
    let max = 0, sq = 0;
    for (const v of w) {
      max = Math.max(max, Math.abs(v));
      sq += v * v;
    }
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(0.99 * bound);
    // Variance of U(-b, b) is b^2 / 3.
    expect(sq / w.length).toBeCloseTo((bound * bound) / 3, 4);
  });
});
