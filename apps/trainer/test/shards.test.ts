/** `fr train` with the class weights sharded over several devices (`head.shards`), on CPU backends. */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { ConfigError, decodeSafetensors, type Backend } from '@fr/core';
import { MemoryPlanError, planMemory } from '@fr/scale';
import { CHECKPOINT_FILE, defaultPlugins, evalCommand, loadRun, measureBackbone, memoryConfigFor, selectBackend, train, type StepInfo, type TrainConfig } from '../src/index.js';
import { initialBias, sphereface2Params } from '@fr/sphereface2';
import { tinyTrainConfig } from './tiny-config.js';

const plugins = defaultPlugins;
const silent = () => {};
const tmp = () => mkdtemp(join(tmpdir(), 'fr-trainer-shards-'));

/** A CPU run whose extra devices are recorded, so a test can see that the shards used them. */
function cpuDevices() {
  const opened: Backend[] = [];
  return {
    opened,
    options: {
      backend: createCpuBackend(),
      backendReason: 'cpu',
      openDevice: async () => {
        const b = createCpuBackend();
        opened.push(b);
        return b;
      },
    },
  };
}

/** 30 classes of 3 images at 16x16, batch 8, 6 steps. */
function config(output: string, overrides: Record<string, unknown> = {}, identities = 30): TrainConfig {
  return tinyTrainConfig(output, 3, { train: { name: 'synthetic', identities, imagesPerIdentity: 3, size: 16 } }, overrides);
}

/** Relative differences of two loss curves. */
const relDiff = (a: number[], b: number[]) => a.map((v, i) => Math.abs(v - b[i]) / Math.abs(b[i]));

describe('head.shards', () => {
  test('K = 2 and 3 train as the unsharded plugin head (ArcFace: the log-sum-exp combined across shards)', async () => {
    const base = await train(config(await tmp()), { plugins, ...cpuDevices().options, print: silent });
    const want = base.losses.map((l) => l.loss);
    for (const shards of [2, 3]) {
      const run = cpuDevices();
      const lines: string[] = [];
      const got = await train(config(await tmp(), { head: { shards } }), { plugins, ...run.options, print: (l) => void lines.push(l) });
      const losses = got.losses.map((l) => l.loss);
      expect(losses).toHaveLength(6);
      // The first step differs by float32 rounding of the split sums only; later steps by what it moved.
      expect(relDiff(losses, want)[0]).toBeLessThan(1e-6);
      for (const d of relDiff(losses, want)) expect(d).toBeLessThan(1e-5);
      // Float32 sums in another order: not bit for bit, so the sharded path did run.
      expect(losses).not.toEqual(want);
      // K - 1 devices were opened, each held a shard and ran kernels, and each was released.
      expect(run.opened).toHaveLength(shards - 1);
      for (const d of run.opened) {
        expect(d.stats().dispatches).toBeGreaterThan(0);
        expect(() => d.kernels.fill(d.alloc(1, 'float32'), 1, 0)).toThrow(/after dispose/);
      }
      expect(lines.some((l) => l.includes(`class weights over ${shards} cpu devices`))).toBe(true);
      const deviceLines = lines.filter((l) => /^memory: device \d+:/.test(l));
      expect(deviceLines).toHaveLength(shards);
      expect(deviceLines[0]).toContain('backbone and activations');
      expect(got.memory.shards).toBe(shards);
      expect(got.memory.deviceTotals).toHaveLength(shards);
      expect(got.memory.deviceTotals.reduce((a, b) => a + b, 0)).toBe(got.memory.total);
    }
  });

  test('fr train opens CPU shards on worker threads: the run of in-thread shards, bit for bit', async () => {
    const selected = await selectBackend('cpu');
    const opened: Backend[] = [];
    const openDevice = async () => {
      const d = await selected.openDevice();
      opened.push(d);
      return d;
    };
    const c = { head: { shards: 2, sampleRate: 0.5 } };
    const threaded = await train(config(await tmp(), c), { plugins, backend: selected.backend, backendReason: selected.reason, openDevice, print: silent });
    const inThread = await train(config(await tmp(), c), { plugins, ...cpuDevices().options, print: silent });
    expect(opened).toHaveLength(1);
    expect(opened[0].capabilities.description).toContain('worker thread');
    expect(opened[0].stats().dispatches).toBeGreaterThan(0);
    expect(threaded.losses.map((l) => [l.loss, l.gradNorm])).toEqual(inThread.losses.map((l) => [l.loss, l.gradNorm]));
  });

  test('SphereFace2 over 2 shards trains as its plugin head (one-vs-all: no reduction of logits across shards)', async () => {
    const loss = { name: 'sphereface2', lw: 10 };
    const base = await train(config(await tmp(), { loss }), { plugins, ...cpuDevices().options, print: silent });
    const got = await train(config(await tmp(), { loss, head: { shards: 2 } }), { plugins, ...cpuDevices().options, print: silent });
    const want = base.losses.map((l) => l.loss);
    const losses = got.losses.map((l) => l.loss);
    expect(want.every(Number.isFinite)).toBe(true);
    for (const d of relDiff(losses, want)) expect(d).toBeLessThan(1e-5);
    // The bias is trained (its name and value are in the checkpoint, as the plugin head's).
    const tensors = decodeSafetensors(new Uint8Array(await readFile(join(got.outputDir, CHECKPOINT_FILE)))).tensors;
    expect(tensors['head.sphereface2.bias'].shape).toEqual([1]);
    expect(Object.keys(tensors).filter((n) => n.startsWith('head.sphereface2.weight.shard'))).toEqual(['head.sphereface2.weight.shard0of2', 'head.sphereface2.weight.shard1of2']);
    expect(Array.from(tensors['head.sphereface2.bias'].data as Float32Array)[0]).not.toBe(initialBias(sphereface2Params.parse(loss), 30));
    // Partial FC with a one-vs-all loss: the sampled negatives only, so other losses than the full head's.
    const sampled = await train(config(await tmp(), { loss, head: { shards: 2, sampleRate: 0.5 } }), { plugins, ...cpuDevices().options, print: silent });
    const sampledLosses = sampled.losses.map((l) => l.loss);
    expect(sampledLosses.every(Number.isFinite)).toBe(true);
    expect(Math.min(...relDiff(sampledLosses, want))).toBeGreaterThan(1e-3);
  });

  test('Partial FC over shards: classes sampled on every shard; resume is exact and needs the same head.shards', async () => {
    const c = (dir: string, shards = 2) => config(dir, { head: { shards, sampleRate: 0.5 }, steps: 8 });
    const dir = await tmp();
    const steps: StepInfo[] = [];
    await train(c(dir), { plugins, ...cpuDevices().options, print: silent, stopAfter: 3, onStep: (s) => steps.push(s) });
    const resumed = await train(c(dir), { plugins, ...cpuDevices().options, print: silent, resume: true, onStep: (s) => steps.push(s) });
    const whole: StepInfo[] = [];
    const straight = await train(c(await tmp()), { plugins, ...cpuDevices().options, print: silent, onStep: (s) => whole.push(s) });
    expect(resumed.losses.map((l) => l.loss)).toEqual(straight.losses.map((l) => l.loss));
    expect(steps.map((s) => Array.from(s.sampledClasses!))).toEqual(whole.map((s) => Array.from(s.sampledClasses!)));
    for (const s of whole) {
      const ids = Array.from(s.sampledClasses!);
      // 15 classes per shard at rate 0.5: at least 7 rows from each, sorted, unique.
      expect(ids.filter((k) => k < 15).length).toBeGreaterThanOrEqual(7);
      expect(ids.filter((k) => k >= 15).length).toBeGreaterThanOrEqual(7);
      expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
    }
    const error = await train(c(dir, 3), { plugins, ...cpuDevices().options, print: silent, resume: true }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/--resume: .*checkpoint\.safetensors was written with head\.shards 2, the config has 3; resume with the same head\.shards/);
  });

  test('a sharded checkpoint loads on one device for evaluation: the same weights, the same scores', async () => {
    const c = config(await tmp(), { head: { shards: 3 }, data: { train: { name: 'synthetic', identities: 30, imagesPerIdentity: 3, size: 16 }, eval: [{ name: 'synthetic', size: 16, testIdentities: 40, imagesPerIdentity: 4, pairsPerFold: 10 }] } });
    const result = await train(c, { plugins, ...cpuDevices().options, print: silent });
    const run = await loadRun(result.outputDir, plugins, createCpuBackend());
    expect(run.head.parameters.map((p) => p.tensor.shape[0])).toEqual([10, 10, 10]);
    const tensors = decodeSafetensors(new Uint8Array(await readFile(join(result.outputDir, CHECKPOINT_FILE)))).tensors;
    const weights = await run.head.readClassWeights();
    for (let i = 0; i < 3; i++) {
      expect(Array.from(weights.subarray(i * 10 * 16, (i + 1) * 10 * 16))).toEqual(Array.from(tensors[`head.arcface.weight.shard${i}of3`].data as Float32Array));
    }
    const reports = await evalCommand(result.outputDir, null, plugins, createCpuBackend());
    const last = result.evaluations.at(-1)!.results[0];
    expect(reports[0].scores).toHaveLength(last.scores.length);
    expect(reports[0].scores.length).toBeGreaterThan(0);
    expect(reports[0].scores).toEqual(last.scores);
    expect(reports[0].accuracyMean).toBe(last.accuracyMean);
  });

  test('a run over its budget on one device is told the shard count that fits, and trains with it', async () => {
    const out = join(await tmp(), 'run');
    const C = 4000;
    const base = config(out, {}, C);
    const footprint = measureBackbone(base, plugins, createCpuBackend());
    const plan = (shards: number) => planMemory({ ...memoryConfigFor(base, C, 16, footprint), shards });
    // A budget between the largest device of two shards and the one device of the unsharded run.
    const budget = Math.floor((plan(1).devices[0].total + Math.max(...plan(2).devices.map((d) => d.total))) / 2);
    const refused = await train(config(out, { memoryBudget: budget }, C), { plugins, ...cpuDevices().options, print: silent }).catch((e: Error) => e);
    expect(refused).toBeInstanceOf(MemoryPlanError);
    expect((refused as Error).message).toContain('It would fit with the class weights sharded over 2 devices (in the config: head: { shards: 2 }).');
    const lines: string[] = [];
    const ok = await train(config(out, { memoryBudget: budget, head: { shards: 2 }, steps: 1 }, C), { plugins, ...cpuDevices().options, print: (l) => void lines.push(l) });
    expect(ok.steps).toBe(1);
    expect(lines.find((l) => l.startsWith('memory: total'))).toContain('per device (memoryBudget)');
  });

  test('refused where it cannot run: losses by their head description, a caller without devices, a count out of range', async () => {
    const dir = await tmp();
    expect(() => config(dir, { head: { shards: 2 }, loss: { name: 'magface' } }))
      .toThrow(/head\.shards: a head sharded over 2 devices \(head\.shards 2\) is not supported with loss magface: its head .*contextGradient.*; set head\.shards: 1/);
    expect(() => config(dir, { head: { shards: 2 }, optimizer: { name: 'adamw' } })).toThrow(/optimizer adamw is not supported with it: set optimizer\.name: sgd, or head\.shards: 1/);
    expect(() => config(dir, { head: { shards: 0 } })).toThrow(/head\.shards: Too small/);
    expect(() => config(dir, { head: { shards: 1.5 } })).toThrow(/head\.shards/);
    const error = await train(config(dir, { head: { shards: 2 } }), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/head\.shards 2: this caller of train\(\) gives no openDevice/);
  });
});
