// Two WebGPU devices (two adapters requested from Dawn) as two shards. Without a GPU, Dawn finds
// SwiftShader through Vulkan; set here so `npx vitest run` works as is.
process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
process.env.XDG_RUNTIME_DIR ??= '/tmp';

import { createCpuBackend } from '@fr/backend-cpu';
import { createNodeWebGpuBackend, type WebGpuBackend } from '@fr/backend-webgpu/node';
import { createRng, type Backend, type Reducer } from '@fr/core';
import { combinedMarginLoss } from '@fr/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShardedHead, shardedHeadFor, type ShardedHead } from '../src/index.js';
import { randomEmbeddings, relError } from './reference.js';
import { arcLike, sphere2Like } from './transforms.js';

const D = 32;
const C = 301;
const B = 16;
const labels = Int32Array.from({ length: B }, (_, i) => (i * 37) % C);

let gpus: WebGpuBackend[] = [];

beforeAll(async () => {
  gpus = [await createNodeWebGpuBackend(), await createNodeWebGpuBackend()];
});

afterAll(() => {
  for (const g of gpus) g.dispose();
});

async function weightGrads(head: ShardedHead): Promise<Float32Array> {
  // Rows per class: 1, or the sub-centres of a C x K head.
  const per = head.shards[0].weight.shape[0] / head.shards[0].range.count;
  const out = new Float32Array(head.numClasses * per * head.embeddingDim);
  for (const s of head.shards) out.set((await s.weight.grad!.data()) as Float32Array, s.range.start * per * head.embeddingDim);
  return out;
}

/** One step of the same head on the CPU and on the GPUs: the same sampled rows, loss and gradients. */
async function expectSameStep(cpu: ShardedHead, gpu: ShardedHead, x: Float32Array): Promise<void> {
  const a = await cpu.forwardBackward(x, labels);
  const b = await gpu.forwardBackward(x, labels);
  // The global class ids sampled (shard counts may differ between the two).
  const sampled = (h: ShardedHead) => h.shards.flatMap((s) => (s.sampled ? Array.from(s.sampled, (j) => s.range.start + j) : []));
  expect(sampled(gpu)).toEqual(sampled(cpu));
  expect(Math.abs(b.loss - a.loss) / a.loss).toBeLessThan(1e-4);
  expect(relError(b.embeddingGrad, a.embeddingGrad)).toBeLessThan(1e-3);
  expect(relError(await weightGrads(gpu), await weightGrads(cpu))).toBeLessThan(1e-3);
  gpu.dispose();
}

describe('sharded head over two WebGPU devices', () => {
  it('runs on two distinct devices', () => {
    expect(gpus[0].device).not.toBe(gpus[1].device);
    expect(gpus.every((g) => g.name === 'webgpu')).toBe(true);
  });

  const cases = [
    { name: 'softmax-ce (LSE all-reduce)', transform: () => arcLike(), reducer: 'softmax-ce' as Reducer },
    { name: 'sigmoid-ova with bias', transform: () => sphere2Like(), reducer: 'sigmoid-ova' as Reducer, positiveWeight: 7, negativeWeight: 0.01, bias: -4 },
  ];
  for (const c of cases) {
    it(`${c.name}: K = 2 on GPUs equals K = 1 on the CPU`, async () => {
      const { name, ...o } = c;
      void name;
      const x = randomEmbeddings(3, B, D);
      const cpu = createShardedHead({ name: 'h', backends: [createCpuBackend()], numClasses: C, embeddingDim: D, rng: createRng(4), ...o });
      const gpu = createShardedHead({ name: 'h', backends: gpus, numClasses: C, embeddingDim: D, rng: createRng(4), ...o });
      const a = await cpu.forwardBackward(x, labels);
      const b = await gpu.forwardBackward(x, labels);
      expect(Math.abs(b.loss - a.loss) / a.loss).toBeLessThan(1e-4);
      expect(relError(b.embeddingGrad, a.embeddingGrad)).toBeLessThan(1e-3);
      expect(relError(await weightGrads(gpu), await weightGrads(cpu))).toBeLessThan(1e-3);
      if (o.reducer === 'sigmoid-ova') {
        const ga = await cpu.bias!.grad!.item();
        expect(Math.abs((await gpu.bias!.grad!.item()) - ga) / Math.abs(ga)).toBeLessThan(1e-4);
      }
      gpu.dispose();
    });
  }

  it('Partial FC at rate 0.2 over two GPUs equals the same sampling on two CPU backends', async () => {
    const x = randomEmbeddings(5, B, D);
    const make = (backends: typeof gpus | ReturnType<typeof createCpuBackend>[]) => createShardedHead({
      name: 'h', backends, numClasses: C, embeddingDim: D, rng: createRng(6), transform: () => arcLike(), reducer: 'softmax-ce', sampleRate: 0.2, sampleSeed: 3,
    });
    const cpu = make([createCpuBackend(), createCpuBackend()]);
    const gpu = make(gpus);
    const a = await cpu.forwardBackward(x, labels);
    const b = await gpu.forwardBackward(x, labels);
    expect(gpu.shards.map((s) => Array.from(s.sampled!))).toEqual(cpu.shards.map((s) => Array.from(s.sampled!)));
    expect(Math.abs(b.loss - a.loss) / a.loss).toBeLessThan(1e-4);
    expect(relError(b.embeddingGrad, a.embeddingGrad)).toBeLessThan(1e-3);
    expect(relError(await weightGrads(gpu), await weightGrads(cpu))).toBeLessThan(1e-3);
    gpu.dispose();
  });

  for (const [what, precision] of [
    ['normalised weights', { weightPrecision: 'float16' }],
    ['normalised weights, logits and logit gradients', { weightPrecision: 'float16', logitPrecision: 'float16' }],
  ] as const) it(`float16 ${what} on two GPUs equal the float16 head on the CPU`, async () => {
    const x = randomEmbeddings(7, B, D);
    const make = (backends: typeof gpus | ReturnType<typeof createCpuBackend>[]) => createShardedHead({
      name: 'h', backends, numClasses: C, embeddingDim: D, rng: createRng(8), transform: () => arcLike(), reducer: 'softmax-ce', ...precision,
    });
    const cpu = make([createCpuBackend()]);
    const gpu = make(gpus);
    expect(gpu.precision.storage).toBe('float16');
    expect(gpu.logitPrecision.storage).toBe('logitPrecision' in precision ? 'float16' : 'float32');
    const a = await cpu.forwardBackward(x, labels);
    const b = await gpu.forwardBackward(x, labels);
    // Both round the same float32 rows to float16 (a device may pick the other neighbour at a tie).
    expect(Math.abs(b.loss - a.loss) / a.loss).toBeLessThan(1e-4);
    expect(relError(b.embeddingGrad, a.embeddingGrad)).toBeLessThan(1e-3);
    expect(relError(await weightGrads(gpu), await weightGrads(cpu))).toBeLessThan(1e-3);
    gpu.dispose();
  });

  it('a loss from the public plugin API, built from its description, on two GPUs equals its CPU head', async () => {
    const x = randomEmbeddings(9, B, D);
    const params = combinedMarginLoss.params.parse({});
    const make = (backends: readonly Backend[]) => shardedHeadFor(
      combinedMarginLoss.createHead({ backend: backends[0], numClasses: C, embeddingDim: D, params, rng: createRng(10), describeOnly: true }),
      { backends, numClasses: C, embeddingDim: D, rng: createRng(10), sampleRate: 0.5, sampleSeed: 2 },
    );
    const cpu = make([createCpuBackend(), createCpuBackend()]);
    await expectSameStep(cpu, make(gpus), x);
    expect(cpu.shards.every((s) => s.sampled !== null)).toBe(true);
  });

  it('C x K sub-centres on two GPUs equal one CPU shard', async () => {
    const x = randomEmbeddings(11, B, D);
    const params = combinedMarginLoss.params.parse({});
    const make = (backends: readonly Backend[]) => {
      const description = combinedMarginLoss.createHead({ backend: backends[0], numClasses: C, embeddingDim: D, params, rng: createRng(12), describeOnly: true }).description!;
      return createShardedHead({ ...description, subCenters: 3, backends, numClasses: C, embeddingDim: D, rng: createRng(12) });
    };
    const gpu = make(gpus);
    expect(gpu.shards.map((s) => s.weight.shape[0])).toEqual(gpu.shards.map((s) => 3 * s.range.count));
    await expectSameStep(make([createCpuBackend()]), gpu, x);
  });
});
