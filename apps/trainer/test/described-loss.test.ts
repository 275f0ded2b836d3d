/**
 * A loss the trainer has never heard of, written only against @fr/core's public plugin API
 * (defineLoss, defineTransform, cosineMarginHead, the angular library), gets Partial FC, shards and
 * float16 storage from its head's description, with no change in the trainer.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { ANGULAR_WGSL, cosineMarginHead, cosPlus, defineLoss, defineTransform, parseConfig, z } from '@fr/core';
import { defaultPlugins, train, trainConfigSchema, type Plugins, type StepInfo, type TrainConfig } from '../src/index.js';
import { TINY_BACKBONE } from './tiny-config.js';

/** insightface's combined margin s (cos(theta + m2) - m3), detached as its CombinedMarginLoss. */
const combinedMargin = defineLoss({
  name: 'combined-margin',
  description: 'combined angular and cosine margin (insightface CombinedMarginLoss), detached',
  params: z.object({ s: z.number().positive().default(16), m2: z.number().min(0).default(0.2), m3: z.number().min(0).default(0.1) }),
  createHead(ctx) {
    const { s, m2, m3 } = ctx.params;
    const transform = defineTransform({
      key: 'combined-margin',
      uniforms: { s, m3, cos_m: Math.cos(m2), sin_m: Math.sin(m2) },
      target: (c, u) => u.s * (cosPlus(Math.min(Math.max(c, -1), 1), u.cos_m, u.sin_m) - u.m3),
      targetGrad: (_c, u) => u.s,
      other: (c, u) => u.s * c,
      otherGrad: (_c, u) => u.s,
      wgsl: ANGULAR_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * (fr_cos_plus(clamp(z, -1.0, 1.0), u.cos_m, u.sin_m) - u.m3); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
    });
    return cosineMarginHead(ctx, { name: 'combined-margin', transform: () => transform, reducer: 'softmax-ce' });
  },
});

const plugins: Plugins = { ...defaultPlugins, losses: [...defaultPlugins.losses, combinedMargin] };
const silent = () => {};
const tmp = () => mkdtemp(join(tmpdir(), 'fr-trainer-described-'));
const devices = () => ({ backend: createCpuBackend(), backendReason: 'cpu', openDevice: async () => createCpuBackend() });

function config(output: string, overrides: Record<string, unknown> = {}): TrainConfig {
  return parseConfig(trainConfigSchema(plugins), {
    seed: 5,
    backend: 'cpu',
    output,
    data: { train: { name: 'synthetic', identities: 30, imagesPerIdentity: 3, size: 16 } },
    backbone: TINY_BACKBONE,
    loss: { name: 'combined-margin' },
    schedule: { name: 'cosine', warmupSteps: 1 },
    batchSize: 8,
    steps: 12,
    logEvery: 1,
    ...overrides,
  }) as TrainConfig;
}

describe('a third-party loss on the scale head', () => {
  test('two shards train as its plugin head; Partial FC over two shards samples every step and trains', async () => {
    const plain = await train(config(await tmp()), { plugins, ...devices(), print: silent });
    const want = plain.losses.map((l) => l.loss);
    const shardedRun = await train(config(await tmp(), { head: { shards: 2 } }), { plugins, ...devices(), print: silent });
    const got = shardedRun.losses.map((l) => l.loss);
    expect(got).toHaveLength(12);
    // The same initial weights and the same loss up to float32 sums in another order.
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i]) / want[i]).toBeLessThan(1e-5);
    expect(got).not.toEqual(want);

    const steps: StepInfo[] = [];
    const partial = await train(config(await tmp(), { head: { shards: 2, sampleRate: 0.5 } }), { plugins, ...devices(), print: silent, onStep: (s) => steps.push(s) });
    const losses = partial.losses.map((l) => l.loss);
    expect(losses.every(Number.isFinite)).toBe(true);
    // 15 classes a shard, 7 sampled on each: 14 of 30 rows per step.
    for (const s of steps) expect(s.sampledClasses).toHaveLength(14);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-4))).toBeLessThan(mean(losses.slice(0, 4)));
    expect(losses[0]).not.toBe(want[0]);
  });

  test('float16 class weights: the float32 run to float16 precision', async () => {
    const want = (await train(config(await tmp(), { steps: 3 }), { plugins, ...devices(), print: silent })).losses.map((l) => l.loss);
    const got = (await train(config(await tmp(), { steps: 3, head: { weightPrecision: 'float16' } }), { plugins, ...devices(), print: silent })).losses.map((l) => l.loss);
    for (let i = 0; i < 3; i++) expect(Math.abs(got[i] - want[i]) / want[i]).toBeLessThan(5e-3);
  });
});
