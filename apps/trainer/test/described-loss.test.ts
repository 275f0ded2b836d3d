/**
 * A loss the trainer has never heard of, written only against @fr/core's public plugin API
 * (`combinedMarginLoss` of @fr/core/testing: defineLoss, defineTransform, cosineMarginHead, the
 * angular library), gets Partial FC, shards and float16 storage from its head's description, with
 * no change in the trainer.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { parseConfig } from '@fr/core';
import { combinedMarginLoss } from '@fr/core/testing';
import { defaultPlugins, train, trainConfigSchema, type Plugins, type StepInfo, type TrainConfig } from '../src/index.js';
import { TINY_BACKBONE } from './tiny-config.js';

const plugins: Plugins = { ...defaultPlugins, losses: [...defaultPlugins.losses, combinedMarginLoss] };
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

  test('sub-center ArcFace (C x K weights) over two shards trains as its plugin head; Partial FC is refused for it', async () => {
    const loss = { name: 'subcenter-arcface', s: 16, m: 0.2, k: 2 };
    const want = (await train(config(await tmp(), { loss, steps: 4 }), { plugins, ...devices(), print: silent })).losses.map((l) => l.loss);
    const got = (await train(config(await tmp(), { loss, steps: 4, head: { shards: 2 } }), { plugins, ...devices(), print: silent })).losses.map((l) => l.loss);
    for (let i = 0; i < 4; i++) expect(Math.abs(got[i] - want[i]) / want[i]).toBeLessThan(1e-5);
    expect(() => config('unused', { loss, head: { shards: 2, sampleRate: 0.5 } }))
      .toThrow(/head\.sampleRate: Partial FC \(head\.sampleRate 0\.5\) is not supported with loss subcenter-arcface: its head keeps 2 sub-centres per class \(a C x K weight layout\), which Partial FC does not sample/);
  });

  test('float16 class weights: the float32 run to float16 precision', async () => {
    const want = (await train(config(await tmp(), { steps: 3 }), { plugins, ...devices(), print: silent })).losses.map((l) => l.loss);
    const got = (await train(config(await tmp(), { steps: 3, head: { weightPrecision: 'float16' } }), { plugins, ...devices(), print: silent })).losses.map((l) => l.loss);
    for (let i = 0; i < 3; i++) expect(Math.abs(got[i] - want[i]) / want[i]).toBeLessThan(5e-3);
  });
});
