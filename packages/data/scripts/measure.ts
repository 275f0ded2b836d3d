/**
 * Measures the synthetic set: generation speed and held-out verification accuracy of raw-pixel
 * cosine similarity on the default 6000 LFW-style pairs.
 * Run: node --conditions=@fr/source --import tsx scripts/measure.ts [size]
 */
// Dev script: the eval package by path, so @fr/data needs no dependency on it.
import { verifyPairs } from '../../eval/src/index.js';
import { SyntheticFaces } from '../src/index.js';
import { rawPixelEmbedding } from './baselines.js';

const size = Number(process.argv[2] ?? 32);
const set = new SyntheticFaces({ seed: 0, size });
let t0 = performance.now();
const N = 3000;
for (let i = 0; i < N; i++) set.trainSample(i);
const perSec = N / ((performance.now() - t0) / 1000);
console.log(`size ${size}: ${perSec.toFixed(0)} images/s (single thread)`);

t0 = performance.now();
const pairs = set.pairs();
const dim = size * size * 3;
const emb = new Float32Array(pairs.length * 2 * dim);
pairs.forEach((p, k) => {
  emb.set(rawPixelEmbedding(set.sample(p.a.identity, p.a.index).image), 2 * k * dim);
  emb.set(rawPixelEmbedding(set.sample(p.b.identity, p.b.index).image), (2 * k + 1) * dim);
});
const r = verifyPairs(emb, dim, pairs.map((p) => p.same));
console.log(`raw-pixel cosine: accuracy ${(100 * r.accuracyMean).toFixed(2)} +- ${(100 * r.accuracyStd).toFixed(2)} %  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
