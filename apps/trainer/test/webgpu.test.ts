import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { createNodeWebGpuBackend, type WebGpuBackend } from '@fr/backend-webgpu/node';
import { parseConfig, type Backend } from '@fr/core';
import { defaultPlugins, train, trainConfigSchema, type TrainConfig } from '../src/index.js';

const config = (output: string) => parseConfig(trainConfigSchema(defaultPlugins), {
  seed: 5,
  output,
  data: { train: { name: 'synthetic', identities: 10, imagesPerIdentity: 4, size: 16 }, eval: [] },
  backbone: { name: 'smallnet', inputSize: 16, embeddingDim: 16, stages: 2, width: 8 },
  loss: { name: 'arcface', s: 16, m: 0.2 },
  schedule: { name: 'constant', warmupSteps: 0 },
  optimizer: { name: 'sgd', lr: 0.05 },
  batchSize: 8,
  steps: 4,
}) as TrainConfig;

test('a training run on WebGPU (SwiftShader here) matches the CPU run for the first steps', async () => {
  const gpu = await createNodeWebGpuBackend();
  const onGpu = await train(config(await mkdtemp(join(tmpdir(), 'fr-gpu-'))), { plugins: defaultPlugins, backend: gpu, backendReason: 'webgpu', print: () => {} });
  const onCpu = await train(config(await mkdtemp(join(tmpdir(), 'fr-cpu-'))), { plugins: defaultPlugins, backend: createCpuBackend(), backendReason: 'cpu', print: () => {} });
  const g = onGpu.losses.map((l) => l.loss);
  const c = onCpu.losses.map((l) => l.loss);
  expect(g).toHaveLength(4);
  for (let i = 0; i < 4; i++) expect(Math.abs(g[i] - c[i])).toBeLessThan(1e-3 * Math.max(1, Math.abs(c[i])) * (i + 1));
  gpu.dispose();
});

test('Partial FC on WebGPU matches the CPU run; the memory plan has no total budget there but checks the buffer limits', async () => {
  const gpu = await createNodeWebGpuBackend();
  const partial = (output: string) => ({ ...config(output), head: { sampleRate: 0.5 } }) as TrainConfig;
  const lines: string[] = [];
  const onGpu = await train(partial(await mkdtemp(join(tmpdir(), 'fr-gpu-'))), { plugins: defaultPlugins, backend: gpu, backendReason: 'webgpu', print: (l) => lines.push(l) });
  const onCpu = await train(partial(await mkdtemp(join(tmpdir(), 'fr-cpu-'))), { plugins: defaultPlugins, backend: createCpuBackend(), backendReason: 'cpu', print: () => {} });
  const g = onGpu.losses.map((l) => l.loss);
  const c = onCpu.losses.map((l) => l.loss);
  expect(g).toHaveLength(4);
  for (let i = 0; i < 4; i++) expect(Math.abs(g[i] - c[i])).toBeLessThan(1e-3 * Math.max(1, Math.abs(c[i])) * (i + 1));
  expect(lines.find((l) => l.startsWith('memory: total'))).toMatch(/budget none \(none: webgpu reports no total, set memoryBudget\)/);
  expect(onGpu.memory.budget).toBeNull();
  expect(onGpu.memory.maxStorageBufferBindingSize).toBe(gpu.capabilities.maxStorageBufferBindingSize);
  gpu.dispose();
});

test('head.shards 2 on two WebGPU devices matches the two-shard CPU run; the second device is opened and used', async () => {
  const gpu = await createNodeWebGpuBackend();
  const opened: Backend[] = [];
  const openDevice = async () => {
    const d = await createNodeWebGpuBackend();
    opened.push(d);
    return d;
  };
  const sharded = (output: string) => ({ ...config(output), head: { shards: 2, sampleRate: 1, weightPrecision: 'float32' } }) as TrainConfig;
  const onGpu = await train(sharded(await mkdtemp(join(tmpdir(), 'fr-gpu-'))), { plugins: defaultPlugins, backend: gpu, backendReason: 'webgpu', openDevice, print: () => {} });
  const onCpu = await train(sharded(await mkdtemp(join(tmpdir(), 'fr-cpu-'))), {
    plugins: defaultPlugins, backend: createCpuBackend(), backendReason: 'cpu', openDevice: async () => createCpuBackend(), print: () => {},
  });
  expect(opened).toHaveLength(1);
  expect((opened[0] as WebGpuBackend).device).not.toBe(gpu.device);
  expect(opened[0].stats().dispatches).toBeGreaterThan(0);
  const g = onGpu.losses.map((l) => l.loss);
  const c = onCpu.losses.map((l) => l.loss);
  expect(g).toHaveLength(4);
  for (let i = 0; i < 4; i++) expect(Math.abs(g[i] - c[i])).toBeLessThan(1e-3 * Math.max(1, Math.abs(c[i])) * (i + 1));
  expect(onGpu.memory.deviceTotals).toEqual(onCpu.memory.deviceTotals);
  gpu.dispose();
});
