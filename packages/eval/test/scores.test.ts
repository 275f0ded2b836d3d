import { createCpuBackend } from '@fr/backend-cpu';
import { createRng } from '@fr/core';
import { describe, expect, it } from 'vitest';
import { flipFuse, flipHorizontalNCHW, identify, pairScores, similarityBlocks } from '../src/index.js';

function unitRows(seed: number, n: number, dim: number): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    let ss = 0;
    for (let t = 0; t < dim; t++) { const v = rng.normal(); out[r * dim + t] = v; ss += v * v; }
    for (let t = 0; t < dim; t++) out[r * dim + t] /= Math.sqrt(ss);
  }
  return out;
}

const dot = (e: Float32Array, dim: number, i: number, j: number) => {
  let s = 0;
  for (let t = 0; t < dim; t++) s += e[i * dim + t] * e[j * dim + t];
  return s;
};

describe('block scoring on a backend', () => {
  const backend = createCpuBackend();
  const dim = 16, n = 300;
  const e = unitRows(1, n, dim);

  it('pairScores equals the row dot products on both paths (dense templates and unique pairs)', async () => {
    const rng = createRng(2);
    // Dense: few templates, many pairs -> matmul blocks. Unique: pairs of distinct rows -> gather path.
    const dense = { l: Array.from({ length: 5000 }, () => rng.int(20)), r: Array.from({ length: 5000 }, () => rng.int(20)) };
    const unique = { l: Array.from({ length: 150 }, (_, p) => 2 * p), r: Array.from({ length: 150 }, (_, p) => 2 * p + 1) };
    for (const { l, r } of [dense, unique]) {
      const s = await pairScores(backend, e, dim, l, r, { blockPairs: 1000 });
      let worst = 0;
      for (let p = 0; p < l.length; p++) worst = Math.max(worst, Math.abs(s[p] - dot(e, dim, l[p], r[p])));
      expect(worst).toBeLessThan(1e-6);
    }
    expect(backend.stats().buffersLive).toBe(0);
  });

  it('pairScores names a pair that points outside the embeddings', async () => {
    await expect(pairScores(backend, e, dim, [0, 1], [2, 300])).rejects.toThrow(/pair 1 names row 300/);
  });

  it('similarityBlocks visits every row once with A B^T', async () => {
    const seen = new Int32Array(n);
    await similarityBlocks(backend, e, e.subarray(0, 10 * dim), dim, (r0, rows, block) => {
      for (let r = 0; r < rows; r++) {
        seen[r0 + r]++;
        for (let g = 0; g < 10; g++) expect(Math.abs(block[r * 10 + g] - dot(e, dim, r0 + r, g))).toBeLessThan(1e-6);
      }
    }, { blockRows: 64 });
    expect(seen.every((v) => v === 1)).toBe(true);
  });
});

describe('identification', () => {
  const backend = createCpuBackend();
  it('ranks identities by their best gallery image', async () => {
    const dim = 2;
    // Gallery: identity 7 at angle 0 and 90 degrees, identity 8 at 45, identity 9 at 180.
    const s = Math.SQRT1_2;
    const gallery = [1, 0, 0, 1, s, s, -1, 0];
    const gl = [7, 7, 8, 9];
    // Probe 0 (id 7) near 80 degrees: best is id 7 -> rank 1. Probe 1 (id 9) at 30 degrees: 8 and 7 are better -> rank 3.
    const a = (deg: number) => [Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)];
    const probes = [...a(80), ...a(30), ...a(50)];
    const r = await identify(backend, gallery, gl, probes, [7, 9, 7], dim, { blockRows: 2 });
    expect(Array.from(r.ranks)).toEqual([1, 3, 2]);
    expect(r.rank1).toBeCloseTo(1 / 3, 12);
    expect(r.cmc.slice(0, 3)).toEqual([1 / 3, 2 / 3, 1]);
    expect(r.rank5).toBe(1);
    await expect(identify(backend, gallery, gl, probes.slice(0, 2), [5], dim)).rejects.toThrow(/identity 5, which has no gallery image/);
  });
});

describe('flip fusion', () => {
  it('normalises the sum of the two embeddings', () => {
    const f = flipFuse([3, 0, 0, 0], [0, 4, 0, 0], 2);
    expect(Array.from(f)).toEqual([0.6, 0.8, 0, 0].map(Math.fround));
  });
  it('mirrors NCHW rows', () => {
    const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
    expect(Array.from(flipHorizontalNCHW(x, 1, 1, 2, 3))).toEqual([3, 2, 1, 6, 5, 4]);
  });
});
