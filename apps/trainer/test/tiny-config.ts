/** The tiny training configuration the trainer's tests start from (CPU, 16x16 smallnet, ArcFace). */
import { parseConfig } from '@fr/core';
import { defaultPlugins, trainConfigSchema, type TrainConfig } from '../src/index.js';

export const TINY_BACKBONE = { name: 'smallnet', inputSize: 16, embeddingDim: 16, stages: 2, width: 8 };

/** A 6-step run of batch 8 on `data`, with `overrides` on top. */
export function tinyTrainConfig(output: string, seed: number, data: Record<string, unknown>, overrides: Record<string, unknown> = {}): TrainConfig {
  return parseConfig(trainConfigSchema(defaultPlugins), {
    seed,
    backend: 'cpu',
    output,
    data,
    backbone: TINY_BACKBONE,
    loss: { name: 'arcface', s: 16, m: 0.2 },
    schedule: { name: 'cosine', warmupSteps: 1 },
    batchSize: 8,
    steps: 6,
    logEvery: 1,
    ...overrides,
  }) as TrainConfig;
}
