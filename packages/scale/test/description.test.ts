/**
 * A loss written only against @fr/core's public plugin API (`combinedMarginLoss` of
 * @fr/core/testing: defineLoss, defineTransform, cosineMarginHead) trains on the sharded head with
 * Partial FC, built from the description its head carries, and agrees with its own plain head.
 */
import { createCpuBackend } from '@fr/backend-cpu';
import { backward, cosineMarginHead, createRng, defineTransform, normsOf, tensor, tidy, type Backend, type HeadContext, type LossHead } from '@fr/core';
import { combinedMarginLoss as combined } from '@fr/core/testing';
import { describe, expect, it } from 'vitest';
import { partialFcSgd, scaleHeadProblem, shardedHeadFor, type ShardedHead } from '../src/index.js';
import { randomEmbeddings, relError } from './reference.js';

const C = 30;
const D = 12;
const B = 8;
const LABELS = Int32Array.from([0, 29, 14, 15, 3, 22, 29, 7]);
const params = combined.params.parse({});
const context = (backend: Backend, seed: number, extra: Partial<HeadContext<typeof params>> = {}): HeadContext<typeof params> =>
  ({ backend, numClasses: C, embeddingDim: D, params, rng: createRng(seed), ...extra });

/** The plain head's loss and gradients for one batch, with the weights given. */
async function plainStep(weight: Float32Array, numClasses: number, x: Float32Array, labels: Int32Array) {
  const backend = createCpuBackend();
  const head: LossHead = combined.createHead({ ...context(backend, 0), numClasses });
  backend.write(head.parameters[0].tensor.buffer(), weight);
  const xt = tensor(backend, x, [labels.length, D], { requiresGrad: true });
  const loss = tidy(() => {
    const l = head.forward(xt, labels);
    backward(l);
    return l;
  });
  return {
    loss: await loss.item(),
    embeddingGrad: (await xt.grad!.data()) as Float32Array,
    weightGrad: (await head.parameters[0].tensor.grad!.data()) as Float32Array,
  };
}

function sharded(backends: Backend[], seed: number, sampleRate: number): ShardedHead {
  const described = combined.createHead({ ...context(backends[0], seed), describeOnly: true });
  expect(described.parameters).toEqual([]); // no class weights were allocated to describe it
  expect(scaleHeadProblem(described)).toBeNull();
  return shardedHeadFor(described, { backends, numClasses: C, embeddingDim: D, rng: createRng(seed), sampleRate, sampleSeed: 5 });
}

describe('a head description from the public plugin API', () => {
  it('builds the same head on two shards: same initial weights, loss and gradients as the plugin head', async () => {
    const x = randomEmbeddings(3, B, D);
    const plain = combined.createHead(context(createCpuBackend(), 11));
    const w0 = (await plain.parameters[0].tensor.data()) as Float32Array;
    const head = sharded([createCpuBackend(), createCpuBackend()], 11, 1);
    expect(await head.readWeights()).toEqual(w0);
    const ref = await plainStep(w0, C, x, LABELS);
    const step = await head.forwardBackward(x, LABELS);
    expect(ref.loss).toBeGreaterThan(0.5);
    expect(Math.abs(step.loss - ref.loss) / ref.loss).toBeLessThan(1e-6);
    expect(relError(step.embeddingGrad, ref.embeddingGrad)).toBeLessThan(1e-5);
    const grads = new Float32Array(C * D);
    for (const s of head.shards) grads.set((await s.weight.grad!.data()) as Float32Array, s.range.start * D);
    expect(relError(grads, ref.weightGrad)).toBeLessThan(1e-5);
  });

  it('Partial FC on two shards equals the plain head over the sampled classes, and trains', async () => {
    const head = sharded([createCpuBackend(), createCpuBackend()], 11, 0.5);
    const x = randomEmbeddings(4, B, D);
    const w0 = await head.readWeights();
    const step = await head.forwardBackward(x, LABELS);
    // The sampled classes, global ids in order; every label among them.
    const kept = head.shards.flatMap((s) => Array.from(s.sampled!, (j) => s.range.start + j));
    expect(kept.length).toBe(2 * Math.floor(0.5 * 15));
    for (const y of LABELS) expect(kept).toContain(y);
    const subset = new Float32Array(kept.length * D);
    kept.forEach((c, i) => subset.set(w0.subarray(c * D, (c + 1) * D), i * D));
    const ref = await plainStep(subset, kept.length, x, Int32Array.from(LABELS, (y) => kept.indexOf(y)));
    expect(Math.abs(step.loss - ref.loss) / ref.loss).toBeLessThan(1e-6);
    expect(relError(step.embeddingGrad, ref.embeddingGrad)).toBeLessThan(1e-5);

    // Steps of the row-sparse SGD on fixed embeddings, a fresh draw of classes each: the loss falls.
    const trained = sharded([createCpuBackend(), createCpuBackend()], 11, 0.5);
    const optimizer = partialFcSgd(trained, { momentum: 0.9, weightDecay: 0, nesterov: false });
    const losses: number[] = [];
    for (let i = 0; i < 20; i++) {
      losses.push((await trained.forwardBackward(x, LABELS)).loss);
      optimizer.step(0.5);
      optimizer.zeroGrad();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]);
  });

  it('a row context runs once per step on the first backend and reaches every shard: as the plain head', async () => {
    // A per-row cosine margin of 0.05 |x| and a buffer counting the hook's calls (running state).
    const transform = defineTransform({
      key: 'test-norm-margin',
      uniforms: { s: 16 },
      target: (c, u, row) => u.s * (c - 0.05 * row.context),
      targetGrad: (_c, u) => u.s,
      other: (c, u) => u.s * c,
      otherGrad: (_c, u) => u.s,
      wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * (z - 0.05 * row.context); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
    });
    const describe = (backend: Backend, describeOnly: boolean) => {
      const calls = tensor(backend, [0], [1], { name: 'norm-margin.calls' });
      return cosineMarginHead({ ...context(backend, 13), describeOnly }, {
        name: 'norm-margin', transform: () => transform, reducer: 'softmax-ce',
        rowContext(_x, normalized) {
          backend.kernels.affine(calls.buffer(), calls.buffer(), 1, 1, 1);
          return normsOf(normalized);
        },
        buffers: [{ name: calls.name, tensor: calls }],
      });
    };
    const x = randomEmbeddings(6, B, D).map((v, i) => v * (1 + (i % 5)));
    const plainBackend = createCpuBackend();
    const plain = describe(plainBackend, false);
    const xt = tensor(plainBackend, x, [B, D], { requiresGrad: true });
    const loss = tidy(() => {
      const l = plain.forward(xt, LABELS);
      backward(l);
      return l;
    });
    const backends = [createCpuBackend(), createCpuBackend()];
    const head = shardedHeadFor(describe(backends[0], true), { backends, numClasses: C, embeddingDim: D, rng: createRng(13) });
    expect(head.buffers.map((b) => b.name)).toEqual(['norm-margin.calls']);
    const step = await head.forwardBackward(x, LABELS);
    // Labels on both shards (0..14 and 15..29): a shard without the context would miss its targets' margins.
    expect(Math.abs(step.loss - (await loss.item())) / step.loss).toBeLessThan(1e-6);
    expect(relError(step.embeddingGrad, (await xt.grad!.data()) as Float32Array)).toBeLessThan(1e-5);
    // Once per step, whatever the number of shards.
    expect(await head.buffers[0].tensor.item()).toBe(1);
  });

  it('C x K sub-centres with tied maxima: every tied sub-centre gets the gradient on shards as on the plain head', async () => {
    const description = combined.createHead({ ...context(createCpuBackend(), 0), describeOnly: true }).description!;
    const subCentred = { ...description, name: 'sub', subCenters: 2 };
    const x = randomEmbeddings(9, B, D);
    const plainBackend = createCpuBackend();
    const plain = cosineMarginHead(context(plainBackend, 5), subCentred);
    const w = Float32Array.from((await plain.parameters[0].tensor.data()) as Float32Array);
    // Sub-centre 1 of every class is a copy of sub-centre 0: each class's max is a tie.
    for (let c = 0; c < C; c++) w.copyWithin((2 * c + 1) * D, 2 * c * D, (2 * c + 1) * D);
    plainBackend.write(plain.parameters[0].tensor.buffer(), w);
    const xt = tensor(plainBackend, x, [B, D], { requiresGrad: true });
    tidy(() => {
      const l = plain.forward(xt, LABELS);
      backward(l);
      return l;
    }).dispose();
    const wantGrad = (await plain.parameters[0].tensor.grad!.data()) as Float32Array;
    const backends = [createCpuBackend(), createCpuBackend()];
    const head = shardedHeadFor(cosineMarginHead({ ...context(backends[0], 5), describeOnly: true }, subCentred), { backends, numClasses: C, embeddingDim: D, rng: createRng(5) });
    for (const s of head.shards) s.weight.backend.write(s.weight.buffer(), w.slice(s.range.start * 2 * D, (s.range.start + s.range.count) * 2 * D));
    await head.forwardBackward(x, LABELS);
    const grads = new Float32Array(C * 2 * D);
    for (const s of head.shards) grads.set((await s.weight.grad!.data()) as Float32Array, s.range.start * 2 * D);
    expect(relError(grads, wantGrad)).toBeLessThan(1e-5);
    for (let c = 0; c < C; c++) {
      expect(Array.from(grads.subarray((2 * c + 1) * D, (2 * c + 2) * D))).toEqual(Array.from(grads.subarray(2 * c * D, (2 * c + 1) * D)));
    }
    expect(grads.some((v) => v !== 0)).toBe(true);
  });

  it('C x K sub-centres on two shards: as the plain head (max over the rows of a class, gradient to the arg-max)', async () => {
    const description = combined.createHead({ ...context(createCpuBackend(), 0), describeOnly: true }).description!;
    const subCentred = { ...description, name: 'sub', subCenters: 3 };
    const x = randomEmbeddings(8, B, D);
    const plainBackend = createCpuBackend();
    const plain = cosineMarginHead(context(plainBackend, 17), subCentred);
    const w0 = (await plain.parameters[0].tensor.data()) as Float32Array;
    expect(w0.length).toBe(C * 3 * D);
    const xt = tensor(plainBackend, x, [B, D], { requiresGrad: true });
    const loss = tidy(() => {
      const l = plain.forward(xt, LABELS);
      backward(l);
      return l;
    });
    const wantGrad = (await plain.parameters[0].tensor.grad!.data()) as Float32Array;
    const backends = [createCpuBackend(), createCpuBackend()];
    const head = shardedHeadFor(cosineMarginHead({ ...context(backends[0], 17), describeOnly: true }, subCentred), { backends, numClasses: C, embeddingDim: D, rng: createRng(17) });
    expect(head.shards.map((s) => s.weight.shape[0])).toEqual([45, 45]);
    expect(await head.readWeights()).toEqual(w0);
    const step = await head.forwardBackward(x, LABELS);
    expect(Math.abs(step.loss - (await loss.item())) / step.loss).toBeLessThan(1e-6);
    expect(relError(step.embeddingGrad, (await xt.grad!.data()) as Float32Array)).toBeLessThan(1e-5);
    const grads = new Float32Array(C * 3 * D);
    for (const s of head.shards) grads.set((await s.weight.grad!.data()) as Float32Array, s.range.start * 3 * D);
    expect(relError(grads, wantGrad)).toBeLessThan(1e-5);
    // Only arg-max sub-centres take gradient: rows that are no row's arg-max stay zero.
    let zeroRows = 0;
    for (let r = 0; r < C * 3; r++) if (grads.subarray(r * D, (r + 1) * D).every((v) => v === 0)) zeroRows++;
    expect(zeroRows).toBeGreaterThan(0);
  });

  it('refuses what the description cannot run on the sharded head, saying why', () => {
    const backend = createCpuBackend();
    const custom: LossHead = { parameters: [], buffers: [], forward: () => { throw new Error('unused'); }, dispose: () => {} };
    expect(scaleHeadProblem(custom)).toMatch(/is custom code/);
    const description = combined.createHead({ ...context(backend, 0), describeOnly: true }).description!;
    const withSubCentres = cosineMarginHead({ ...context(backend, 0), describeOnly: true }, { ...description, name: 'k', subCenters: 3 });
    expect(scaleHeadProblem(withSubCentres)).toBeNull();
    expect(scaleHeadProblem(withSubCentres, { sampleRate: 0.5 })).toMatch(/keeps 3 sub-centres per class .* which Partial FC does not sample/);
    expect(() => shardedHeadFor(withSubCentres, { backends: [backend], numClasses: C, embeddingDim: D, rng: createRng(0), sampleRate: 0.5 }))
      .toThrow(/k: the head keeps 3 sub-centres/);
  });
});
