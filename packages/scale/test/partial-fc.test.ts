import { createCpuBackend } from '@fr/backend-cpu';
import {
  backward, createRng, l2normalize, marginLoss, matmul, sgd, tensor, tidy, type Backend,
} from '@fr/core';
import { describe, expect, it } from 'vitest';
import { createShardedHead, partialFcSgd, sampleShard, splitClasses, type ShardedHead } from '../src/index.js';
import { randomEmbeddings, referenceStep, relError } from './reference.js';
import { arcLike, sphere2Like } from './transforms.js';

const D = 12;
const B = 6;

async function weightGrads(head: ShardedHead): Promise<Float32Array> {
  const out = new Float32Array(head.numClasses * head.embeddingDim);
  for (const s of head.shards) out.set((await s.weight.grad!.data()) as Float32Array, s.range.start * head.embeddingDim);
  return out;
}

describe('positive-preserving sampling (partial_fc_v2 sample)', () => {
  it('keeps every class of the batch, fills to floor(rate * count), sorts, remaps labels', () => {
    const labels = Int32Array.from([3, 97, 40, 3, 120, 55]);
    const range = { start: 40, count: 60 }; // classes 40..99
    const s = sampleShard(labels, range, 0.25, createRng(1));
    expect(s.index.length).toBe(15);
    for (let i = 1; i < s.index.length; i++) expect(s.index[i]).toBeGreaterThan(s.index[i - 1]);
    for (const y of [97, 40, 55]) expect(Array.from(s.index)).toContain(y - 40);
    // searchsorted of the local label, -1 for labels held by other shards.
    expect(s.labels[0]).toBe(-1);
    expect(s.labels[3]).toBe(-1);
    expect(s.labels[4]).toBe(-1);
    for (const r of [1, 2, 5]) expect(s.index[s.labels[r]]).toBe(labels[r] - 40);
  });

  it('uses the positives alone when they exceed the budget', () => {
    const labels = Int32Array.from([0, 1, 2, 3, 4, 5, 9]);
    const s = sampleShard(labels, { start: 0, count: 10 }, 0.3, createRng(1));
    expect(Array.from(s.index)).toEqual([0, 1, 2, 3, 4, 5, 9]);
    expect(Array.from(s.labels)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('is deterministic for a seed, uniform over the negatives, and dense rates work', () => {
    const labels = Int32Array.from([5]);
    const a = sampleShard(labels, { start: 0, count: 1000 }, 0.1, createRng(42));
    const b = sampleShard(labels, { start: 0, count: 1000 }, 0.1, createRng(42));
    const c = sampleShard(labels, { start: 0, count: 1000 }, 0.1, createRng(43));
    expect(a.index).toEqual(b.index);
    expect(a.index).not.toEqual(c.index);
    const dense = sampleShard(labels, { start: 0, count: 1000 }, 0.9, createRng(42));
    expect(dense.index.length).toBe(900);
    expect(Array.from(dense.index)).toContain(5);
    // Each negative is drawn with probability (100 - 1) / 999: count hits over many draws.
    const rng = createRng(9);
    const hits = new Float64Array(1000);
    const trials = 2000;
    for (let t = 0; t < trials; t++) for (const j of sampleShard(labels, { start: 0, count: 1000 }, 0.1, rng).index) hits[j]++;
    expect(hits[5]).toBe(trials);
    let lo = 0, hi = 0;
    const p = 99 / 999;
    for (let j = 0; j < 1000; j++) {
      if (j === 5) continue;
      const f = hits[j] / trials;
      if (f < p - 0.05) lo++;
      if (f > p + 0.05) hi++;
    }
    expect(lo + hi).toBe(0);
  });
});

/** The loss of the sampled classifier computed directly with the tape: rows gathered on the host. */
async function sampledReference(backend: Backend, weights: Float32Array, rows: number[], labels: Int32Array,
  x: Float32Array, transform = arcLike()) {
  const W = new Float32Array(rows.length * D);
  rows.forEach((r, i) => W.set(weights.subarray(r * D, r * D + D), i * D));
  const y = Int32Array.from(labels, (l) => rows.indexOf(l));
  const w = tensor(backend, W, [rows.length, D], { requiresGrad: true });
  const e = tensor(backend, x, [labels.length, D], { requiresGrad: true });
  const loss = tidy(() => {
    const cos = matmul(l2normalize(e), l2normalize(w), { transB: true });
    const l = marginLoss(cos, tensor(backend, y, [y.length]), { transform, reducer: 'softmax-ce', scale: 1 / labels.length });
    backward(l);
    return l;
  });
  return { loss: await loss.item(), gw: (await w.grad!.data()) as Float32Array, gx: (await e.grad!.data()) as Float32Array };
}

describe('Partial FC head', () => {
  const C = 30;
  const labels = Int32Array.from([2, 29, 14, 2, 21, 8]);

  it('rate 1.0 is the full head, bit for bit', async () => {
    const cpu = createCpuBackend();
    const x = randomEmbeddings(1, B, D);
    const ref = await referenceStep(cpu, 3, C, D, { name: 'r', transform: () => arcLike(), reducer: 'softmax-ce' }, x, labels);
    const head = createShardedHead({ name: 'h', backends: [cpu], numClasses: C, embeddingDim: D, rng: createRng(3), transform: () => arcLike(), reducer: 'softmax-ce', sampleRate: 1 });
    const step = await head.forwardBackward(x, labels);
    expect(Math.fround(step.loss)).toBe(ref.loss);
    expect(step.embeddingGrad).toEqual(ref.embeddingGrad);
    expect(await weightGrads(head)).toEqual(ref.weightGrad);
    expect(head.shards[0].sampled).toBeNull();
  });

  it('when the batch holds every class, the gather path is also the full head, bit for bit', async () => {
    const cpu = createCpuBackend();
    const all = Int32Array.from({ length: 8 }, (_, i) => 7 - i);
    const x = randomEmbeddings(2, 8, D);
    const ref = await referenceStep(cpu, 4, 8, D, { name: 'r', transform: () => arcLike(), reducer: 'softmax-ce' }, x, all);
    const head = createShardedHead({ name: 'h', backends: [cpu], numClasses: 8, embeddingDim: D, rng: createRng(4), transform: () => arcLike(), reducer: 'softmax-ce', sampleRate: 0.5 });
    const step = await head.forwardBackward(x, all);
    expect(Array.from(head.shards[0].sampled!)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Math.fround(step.loss)).toBe(ref.loss);
    expect(step.embeddingGrad).toEqual(ref.embeddingGrad);
    expect(await weightGrads(head)).toEqual(ref.weightGrad);
  });

  for (const K of [1, 2, 3]) {
    it(`rate 0.3 over K = ${K} shards equals the classifier of the sampled rows; other rows get zero gradient`, async () => {
      const x = randomEmbeddings(5, B, D);
      const backends = Array.from({ length: K }, () => createCpuBackend());
      const head = createShardedHead({ name: 'h', backends, numClasses: C, embeddingDim: D, rng: createRng(8), transform: () => arcLike(), reducer: 'softmax-ce', sampleRate: 0.3, sampleSeed: 99 });
      const weights = await head.readWeights();
      const step = await head.forwardBackward(x, labels);
      const rows: number[] = [];
      head.shards.forEach((s, i) => {
        const budget = Math.floor(0.3 * splitClasses(C, K)[i].count);
        expect(s.sampled!.length).toBeGreaterThanOrEqual(budget);
        for (const j of s.sampled!) rows.push(s.range.start + j);
      });
      for (const y of labels) expect(rows).toContain(y);
      const ref = await sampledReference(createCpuBackend(), weights, rows, labels, x);
      expect(Math.abs(step.loss - ref.loss) / ref.loss).toBeLessThan(1e-6);
      expect(relError(step.embeddingGrad, ref.gx)).toBeLessThan(1e-5);
      const gw = await weightGrads(head);
      const picked = new Set(rows);
      for (let c = 0; c < C; c++) {
        const g = gw.subarray(c * D, c * D + D);
        if (picked.has(c)) expect(relError(g, ref.gw.subarray(rows.indexOf(c) * D, rows.indexOf(c) * D + D))).toBeLessThan(1e-4);
        else expect(Array.from(g).every((v) => v === 0)).toBe(true);
      }
      // The same seed draws the same classes again.
      const again = createShardedHead({ name: 'h', backends, numClasses: C, embeddingDim: D, rng: createRng(8), transform: () => arcLike(), reducer: 'softmax-ce', sampleRate: 0.3, sampleSeed: 99 });
      await again.forwardBackward(x, labels);
      expect(again.shards.map((s) => Array.from(s.sampled!))).toEqual(head.shards.map((s) => Array.from(s.sampled!)));
    });
  }

  it('a step given sampleRng draws from it: the draw does not depend on the steps before', async () => {
    const x = randomEmbeddings(7, B, D);
    const make = () => createShardedHead({ name: 'h', backends: [createCpuBackend()], numClasses: C, embeddingDim: D, rng: createRng(8), transform: () => arcLike(), reducer: 'softmax-ce', sampleRate: 0.3, sampleSeed: 5 });
    const fresh = make();
    await fresh.forwardBackward(x, labels, { sampleRng: createRng(123) });
    const used = make();
    // Two steps on the head's own sampler first, then the same step with the same generator.
    await used.forwardBackward(x, labels);
    used.clearSampled();
    await used.forwardBackward(x, labels);
    used.clearSampled();
    await used.forwardBackward(x, labels, { sampleRng: createRng(123) });
    expect(Array.from(used.shards[0].sampled!)).toEqual(Array.from(fresh.shards[0].sampled!));
    expect(Array.from(fresh.shards[0].sampled!)).toEqual(Array.from(sampleShard(labels, { start: 0, count: C }, 0.3, createRng(123)).index));
    // Without it the head's own sampler runs on: its next draw is not the one of a fresh head.
    const own = make();
    await own.forwardBackward(x, labels);
    expect(Array.from(own.shards[0].sampled!)).toEqual(Array.from(sampleShard(labels, { start: 0, count: C }, 0.3, createRng(5)).index));
  });

  it('sigmoid-ova with bias samples per shard without any cross-shard reduction', async () => {
    const x = randomEmbeddings(6, B, D);
    const head = createShardedHead({ name: 'h', backends: [createCpuBackend(), createCpuBackend()], numClasses: C, embeddingDim: D, rng: createRng(8), transform: () => sphere2Like(), reducer: 'sigmoid-ova', bias: -3, sampleRate: 0.5, sampleSeed: 1 });
    const step = await head.forwardBackward(x, labels);
    expect(Number.isFinite(step.loss)).toBe(true);
    expect(step.loss).toBeGreaterThan(0);
    expect(head.shards.every((s) => s.sampled!.length >= Math.floor(0.5 * s.range.count))).toBe(true);
    expect(Math.abs(await head.bias!.grad!.item())).toBeGreaterThan(0);
  });
});

describe('partialFcSgd', () => {
  const C = 40;
  it('updates only sampled rows: the others keep weight and momentum bit for bit', async () => {
    const backends = [createCpuBackend(), createCpuBackend()];
    const head = createShardedHead({ name: 'h', backends, numClasses: C, embeddingDim: D, rng: createRng(2), transform: () => arcLike(), reducer: 'softmax-ce', sampleRate: 0.25, sampleSeed: 5 });
    const opt = partialFcSgd(head, { momentum: 0.9, weightDecay: 5e-4 });
    const lr = 0.1;
    const batches = [Int32Array.from([1, 2, 30, 31, 5, 6]), Int32Array.from([10, 11, 12, 33, 34, 35])];
    const momentum = async () => Promise.all(opt.state().map(async (s) => (await s.tensor.data()) as Float32Array));
    for (let step = 0; step < 2; step++) {
      const before = await head.readWeights();
      const momBefore = await momentum();
      await head.forwardBackward(randomEmbeddings(10 + step, B, D), batches[step]);
      const sampled = head.shards.map((s) => new Set(s.sampled!));
      const grads = await weightGrads(head);
      opt.step(lr);
      opt.zeroGrad();
      expect(head.shards.every((s) => s.sampled === null && s.weight.grad === null)).toBe(true);
      const after = await head.readWeights();
      const momAfter = await momentum();
      let moved = 0;
      head.shards.forEach((s, i) => {
        for (let j = 0; j < s.range.count; j++) {
          const g = (s.range.start + j) * D;
          for (let d = 0; d < D; d++) {
            const m0 = momBefore[i][j * D + d];
            const m1 = momAfter[i][j * D + d];
            if (!sampled[i].has(j)) {
              expect(after[g + d]).toBe(before[g + d]);
              expect(m1).toBe(m0);
            } else {
              // torch SGD on the row: buf = 0.9 buf + (g + wd w); w -= lr buf.
              const expectedBuf = Math.fround(0.9 * m0 + (grads[g + d] + 5e-4 * before[g + d]));
              // The same float64 arithmetic rounded to float32 as the kernel: exact equality.
              expect(m1).toBe(expectedBuf);
              expect(after[g + d]).toBe(Math.fround(before[g + d] - lr * m1));
              if (after[g + d] !== before[g + d]) moved++;
            }
          }
        }
      });
      expect(moved).toBeGreaterThan(0);
    }
  });

  it('at rate 1 it is torch SGD on the whole matrix', async () => {
    const make = () => createShardedHead({ name: 'h', backends: [createCpuBackend(), createCpuBackend()], numClasses: C, embeddingDim: D, rng: createRng(2), transform: () => arcLike(), reducer: 'softmax-ce' });
    const a = make();
    const b = make();
    const oa = partialFcSgd(a, { momentum: 0.9, weightDecay: 5e-4 });
    const ob = sgd(b.parameters, { momentum: 0.9, weightDecay: 5e-4 });
    const y = Int32Array.from([1, 2, 30, 31, 5, 6]);
    for (let i = 0; i < 2; i++) {
      const x = randomEmbeddings(20 + i, B, D);
      await a.forwardBackward(x, y);
      await b.forwardBackward(x, y);
      oa.step(0.1);
      ob.step(0.1);
      oa.zeroGrad();
      ob.zeroGrad();
    }
    expect(await a.readWeights()).toEqual(await b.readWeights());
  });
});
