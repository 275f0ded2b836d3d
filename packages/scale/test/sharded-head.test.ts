import { createCpuBackend } from '@fr/backend-cpu';
import { createRng, sgd, type CosineMarginHeadOptions, type Reducer } from '@fr/core';
import { describe, expect, it } from 'vitest';
import { createShardedHead, partialFcSgd, splitClasses, type ShardedHead } from '../src/index.js';
import { randomEmbeddings, referenceStep, relError } from './reference.js';
import { arcLike, sphere2Like } from './transforms.js';

const D = 16;
const C = 37;
const B = 8;
const SEED = 7;
// Labels in every shard for K = 1, 2, 3 (shard starts 0, 13, 19, 25), with a repeated class.
const LABELS = Int32Array.from([0, 36, 12, 13, 18, 19, 25, 36]);

interface Case {
  name: string;
  options: Omit<CosineMarginHeadOptions, 'name'>;
}

const cases: Case[] = [
  { name: 'softmax-ce, ArcFace-like detached margin', options: { transform: () => arcLike(), reducer: 'softmax-ce' as Reducer } },
  {
    name: 'sigmoid-ova, SphereFace2-like with bias',
    options: { transform: () => sphere2Like(), reducer: 'sigmoid-ova' as Reducer, positiveWeight: 7, negativeWeight: 3 / 36, bias: -4.2 },
  },
];

async function weightGrads(head: ShardedHead): Promise<Float32Array> {
  const out = new Float32Array(head.numClasses * head.embeddingDim);
  for (const s of head.shards) out.set((await s.weight.grad!.data()) as Float32Array, s.range.start * head.embeddingDim);
  return out;
}

describe('splitClasses', () => {
  it('splits as insightface: the first C mod K shards hold one more class', () => {
    expect(splitClasses(37, 3)).toEqual([{ start: 0, count: 13 }, { start: 13, count: 12 }, { start: 25, count: 12 }]);
    expect(splitClasses(37, 2)).toEqual([{ start: 0, count: 19 }, { start: 19, count: 18 }]);
    expect(splitClasses(10, 5).map((r) => r.count)).toEqual([2, 2, 2, 2, 2]);
    expect(() => splitClasses(2, 3)).toThrow(/empty/);
  });
});

describe('sharded head on K CPU backends equals the unsharded head', () => {
  for (const c of cases) {
    for (const K of [1, 2, 3]) {
      it(`${c.name}, K = ${K}`, async () => {
        const cpu = createCpuBackend();
        const x = randomEmbeddings(11, B, D);
        const ref = await referenceStep(cpu, SEED, C, D, { name: 'ref', ...c.options }, x, LABELS);
        const backends = Array.from({ length: K }, () => createCpuBackend());
        const head = createShardedHead({ name: 'h', backends, numClasses: C, embeddingDim: D, rng: createRng(SEED), ...c.options });
        expect(head.shards.map((s) => s.backend)).toEqual(backends);
        // Same seed, same draws: the shards concatenate to the unsharded weights exactly.
        expect(await head.readWeights()).toEqual(ref.weight);
        const step = await head.forwardBackward(x, LABELS);
        expect(ref.loss).toBeGreaterThan(0.1);
        expect(Math.abs(step.loss - ref.loss) / ref.loss).toBeLessThan(1e-6);
        expect(relError(step.embeddingGrad, ref.embeddingGrad)).toBeLessThan(1e-5);
        const wg = await weightGrads(head);
        // Every weight row, one by one.
        for (let j = 0; j < C; j++) {
          expect(relError(wg.subarray(j * D, j * D + D), ref.weightGrad.subarray(j * D, j * D + D))).toBeLessThan(1e-4);
        }
        expect(relError(wg, ref.weightGrad)).toBeLessThan(1e-5);
        if (ref.biasGrad !== null) {
          const bg = await head.bias!.grad!.item();
          expect(Math.abs(ref.biasGrad)).toBeGreaterThan(1e-3);
          expect(Math.abs(bg - ref.biasGrad) / Math.abs(ref.biasGrad)).toBeLessThan(1e-5);
          expect(head.bias!.backend).toBe(backends[0]);
        }
        if (K === 1) {
          // One shard runs the very kernels of the tape in the same order: bit-identical.
          expect(Math.fround(step.loss)).toBe(ref.loss);
          expect(step.embeddingGrad).toEqual(ref.embeddingGrad);
          expect(wg).toEqual(ref.weightGrad);
        }
        head.dispose();
      });
    }
  }

  it('accumulates gradients over two calls and frees every temporary', async () => {
    const backends = [createCpuBackend(), createCpuBackend()];
    const head = createShardedHead({ name: 'h', backends, numClasses: C, embeddingDim: D, rng: createRng(1), transform: () => arcLike(), reducer: 'softmax-ce' });
    const live = backends.map((b) => b.stats().buffersLive);
    const x = randomEmbeddings(3, B, D);
    const a = await head.forwardBackward(x, LABELS);
    const once = await weightGrads(head);
    const liveAfter = backends.map((b) => b.stats().buffersLive);
    // Only the new .grad of each shard outlives the step.
    expect(liveAfter).toEqual(live.map((n) => n + 1));
    const b = await head.forwardBackward(x, LABELS);
    expect(b.loss).toBe(a.loss);
    const twice = await weightGrads(head);
    for (let i = 0; i < once.length; i++) expect(twice[i]).toBeCloseTo(2 * once[i], 6);
    expect(backends.map((bk) => bk.stats().buffersLive)).toEqual(liveAfter);
    head.dispose();
  });

  it('lossScale multiplies loss and gradients exactly by a power of two', async () => {
    const make = () => createShardedHead({ name: 'h', backends: [createCpuBackend(), createCpuBackend()], numClasses: C, embeddingDim: D, rng: createRng(2), transform: () => arcLike(), reducer: 'softmax-ce' });
    const h1 = make();
    const h2 = make();
    const x = randomEmbeddings(4, B, D);
    const a = await h1.forwardBackward(x, LABELS);
    const b = await h2.forwardBackward(x, LABELS, { lossScale: 1024 });
    expect(b.loss).toBeCloseTo(a.loss * 1024, 6);
    expect(b.embeddingGrad).toEqual(a.embeddingGrad.map((v) => v * 1024));
    const ga = await weightGrads(h1);
    expect(await weightGrads(h2)).toEqual(ga.map((v) => v * 1024));
  });

  it('trains: a few SGD steps across 3 shards lower the loss', async () => {
    const head = createShardedHead({ name: 'h', backends: [createCpuBackend(), createCpuBackend(), createCpuBackend()], numClasses: C, embeddingDim: D, rng: createRng(5), transform: () => arcLike(16, 0.2), reducer: 'softmax-ce' });
    const opt = sgd(head.parameters, { momentum: 0.9 });
    const x = randomEmbeddings(6, B, D);
    const losses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { loss } = await head.forwardBackward(x, LABELS);
      losses.push(loss);
      opt.step(0.5);
      opt.zeroGrad();
    }
    expect(losses[4]).toBeLessThan(losses[0] * 0.8);
  });

  it('rejects bad input with messages that name it', async () => {
    const head = createShardedHead({ name: 'h', backends: [createCpuBackend()], numClasses: C, embeddingDim: D, rng: createRng(1), transform: () => arcLike(), reducer: 'softmax-ce' });
    await expect(head.forwardBackward(new Float32Array(B * D), Int32Array.from([0, 1, 2, 3, 4, 5, 6, 37]))).rejects.toThrow(/label 37 at row 7/);
    await expect(head.forwardBackward(new Float32Array(B * D + 1), LABELS)).rejects.toThrow(/embeddings must be/);
    expect(() => createShardedHead({ name: 'h', backends: [], numClasses: C, embeddingDim: D, rng: createRng(1), transform: () => arcLike(), reducer: 'softmax-ce' })).toThrow(/at least one backend/);
  });
});

describe('shards on CPU worker threads', () => {
  it('compute what in-thread CPU shards compute, bit for bit (softmax with the all-reduce, sigmoid with a bias, Partial FC), and train with partialFcSgd', async () => {
    const { createWorkerCpuBackend } = await import('@fr/backend-cpu/node');
    for (const c of cases) {
      for (const sampleRate of [1, 0.5]) {
        const main = createCpuBackend();
        const workers = [createWorkerCpuBackend(), createWorkerCpuBackend()];
        const make = (backends: ReturnType<typeof createCpuBackend>[]) => createShardedHead({
          name: 'h', backends, numClasses: C, embeddingDim: D, rng: createRng(SEED), sampleRate, sampleSeed: 5, ...c.options,
        });
        const inThread = make([main, createCpuBackend(), createCpuBackend()]);
        const threaded = make([createCpuBackend(), ...workers]);
        const x = randomEmbeddings(11, B, D);
        const optimizers = [partialFcSgd(inThread, { momentum: 0.9 }), partialFcSgd(threaded, { momentum: 0.9 })];
        for (let step = 0; step < 2; step++) {
          const a = await inThread.forwardBackward(x, LABELS);
          const b = await threaded.forwardBackward(x, LABELS);
          expect(b.loss).toBe(a.loss);
          expect(Array.from(b.embeddingGrad)).toEqual(Array.from(a.embeddingGrad));
          expect(Array.from(await weightGrads(threaded))).toEqual(Array.from(await weightGrads(inThread)));
          for (const opt of optimizers) {
            opt.step(0.1);
            opt.zeroGrad();
          }
          expect(Array.from(await threaded.readWeights())).toEqual(Array.from(await inThread.readWeights()));
        }
        expect(workers.every((w) => w.stats().dispatches > 0)).toBe(true);
        for (const w of workers) w.dispose();
      }
    }
  });
});
