/** Memory accounting and Partial FC in `fr train`: tiny synthetic runs on the CPU backend. */
import { mkdtemp, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { tinyTrainConfig } from './tiny-config.js';
import { ConfigError, createRng, decodeSafetensors, tensor, tidy } from '@fr/core';
import { formatBytes, MemoryPlanError, planMemory, sampleBudget } from '@fr/scale';
import { smallnet } from '@fr/smallnet';
import {
  buildRun, CHECKPOINT_FILE, defaultPlugins, loadConfig, loadRun, measureBackbone, memoryConfigFor, train,
  type StepInfo, type TrainConfig,
} from '../src/index.js';

const plugins = defaultPlugins;
const silent = () => {};
const tmp = () => mkdtemp(join(tmpdir(), 'fr-trainer-scale-'));
const cpu = () => ({ backend: createCpuBackend(), backendReason: 'cpu' });


/** A tiny run without evaluation: `identities` classes of 2 images, batch 8. */
function config(output: string, overrides: Record<string, unknown> = {}, identities = 40): TrainConfig {
  return tinyTrainConfig(output, 5, { train: { name: 'synthetic', identities, imagesPerIdentity: 2, size: 16 } }, overrides);
}

/** `memory: <group> <human> (<bytes> bytes...)` lines, by group label. */
function memoryLines(lines: string[]): Map<string, { human: string; bytes: number }> {
  const out = new Map<string, { human: string; bytes: number }>();
  for (const line of lines) {
    const m = /^memory: (.+?) +(\S+ \S+) \((\d+) bytes/.exec(line);
    if (m) out.set(m[1], { human: m[2], bytes: Number(m[3]) });
  }
  return out;
}

/** Bytes the smallnet of these tests keeps alive after a training forward of `batch` images, measured here on its own. */
function smallnetActivations(batch: number): number {
  const backend = createCpuBackend();
  const params = smallnet.params.parse({ inputSize: 16, embeddingDim: 16, stages: 2, width: 8 });
  const module = smallnet.build({ backend, params, rng: createRng(0) });
  const before = backend.stats().bytesLive;
  let after = 0;
  tidy(() => {
    module.forward(tensor(backend, new Float32Array(batch * 3 * 16 * 16), [batch, 3, 16, 16]), { training: true, seed: 0 });
    after = backend.stats().bytesLive;
  });
  module.dispose();
  return after - before;
}

describe('memory accounting', () => {
  test('prints one line per tensor group with the numbers of planMemory, and records them in the log, checkpoint and report', async () => {
    const out = await tmp();
    const lines: string[] = [];
    const c = config(out, { steps: 1 }, 12);
    const result = await train(c, { plugins, ...cpu(), print: (l) => lines.push(l) });
    const printed = memoryLines(lines);
    expect([...printed.keys()]).toEqual(['backbone', 'class weights', 'optimizer state', 'activations', 'loss head', 'head workspace', 'total']);

    // The expected plan, from the config's figures: parameters of the built backbone, activations
    // measured at batch 2 and scaled to 8, SGD with momentum, 12 classes x 16, rate 1.
    const run = buildRun(c, plugins, createCpuBackend(), 12);
    const backboneParams = run.module.parameters.reduce((n, p) => n + p.tensor.size, 0);
    const activationBytes = Math.ceil((smallnetActivations(2) / 2) * 8);
    expect(activationBytes).toBeGreaterThan(0);
    const want = planMemory({ numClasses: 12, embeddingDim: 16, batch: 8, backboneParams, activationBytes, optimizer: 'sgd-momentum', sampleRate: 1 }).totals;
    const byLabel = {
      backbone: want.backbone, 'class weights': want.classWeights, 'optimizer state': want.optimizerState, activations: want.activations,
      'loss head': want.lossHead, 'head workspace': want.headWorkspace, total: want.total,
    };
    for (const [label, bytes] of Object.entries(byLabel)) {
      expect(printed.get(label)!.bytes, label).toBe(bytes);
      expect(printed.get(label)!.human, label).toBe(formatBytes(bytes));
    }
    // By hand: weights and their gradient 2 * 12 * 16 * 4; logits and their gradient 2 * 8 * 12 * 4.
    expect(printed.get('class weights')!.bytes).toBe(1536);
    expect(printed.get('loss head')!.bytes).toBe(768);
    expect(printed.get('backbone')!.bytes).toBe(8 * backboneParams);
    expect(printed.get('optimizer state')!.bytes).toBe(4 * (backboneParams + 12 * 16));
    expect(printed.get('activations')!.bytes).toBe(activationBytes);
    expect(lines.find((l) => l.startsWith('memory: total'))).toMatch(/budget .*\(the machine's memory\)/);

    const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log[0].memory.total).toBe(want.total);
    expect(log[0].memory.classWeights).toBe(1536);
    expect(result.memory.activations).toBe(activationBytes);
    const meta = decodeSafetensors(await readFile(join(out, CHECKPOINT_FILE)), 'checkpoint').metadata;
    expect(JSON.parse(meta.memory).headWorkspace).toBe(want.headWorkspace);
    expect(await readFile(result.reportPath, 'utf8')).toContain('Memory plan');
  });

  test('a run that cannot fit memoryBudget is refused before training, proposing head.sampleRate; nothing is written', async () => {
    const out = join(await tmp(), 'run');
    // 4000 classes x 16: the head dominates, so sampling can bring the run under the budget.
    const base = config(out, {}, 4000);
    const footprint = measureBackbone(base, plugins, createCpuBackend());
    const total = (rate: number) => planMemory({ ...memoryConfigFor(base, 4000, 16, footprint), sampleRate: rate }).totals.total;
    const budgetKiB = Math.floor((total(1) + total(0.5)) / 2 / 1024);
    expect(budgetKiB * 1024).toBeLessThan(total(1));
    expect(budgetKiB * 1024).toBeGreaterThan(total(0.5));
    const c = config(out, { memoryBudget: `${budgetKiB}KiB` }, 4000);
    expect(c.memoryBudget).toBe(budgetKiB * 1024);
    const steps: StepInfo[] = [];
    const error = await train(c, { plugins, ...cpu(), print: silent, onStep: (s) => steps.push(s) }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(MemoryPlanError);
    const message = (error as Error).message;
    expect(message).toContain(`over the budget of ${formatBytes(budgetKiB * 1024)}`);
    expect(message).toContain('It would fit with Partial FC at head.sampleRate: 0.5 (in the config: head: { sampleRate: 0.5 })');
    // Two devices of that budget each would fit too.
    expect(message).toContain('It would fit with the class weights sharded over 2 devices (in the config: head: { shards: 2 }).');
    expect(steps).toHaveLength(0);
    expect(existsSync(join(out, CHECKPOINT_FILE))).toBe(false);
    expect(existsSync(out)).toBe(false);

    // A budget nothing fits: no rate is proposed, the message says what else to change.
    const tiny = (await train(config(out, { memoryBudget: '1KiB' }, 4000), { plugins, ...cpu(), print: silent }).catch((e: Error) => e)) as Error;
    expect(tiny).toBeInstanceOf(MemoryPlanError);
    expect(tiny.message).toMatch(/over the budget of 1\.00 KiB/);
    expect(tiny.message).not.toMatch(/head\.sampleRate: 0\./);
    expect(tiny.message).toContain('Lower batchSize, use a smaller backbone or fewer classes, or raise memoryBudget.');
    expect(existsSync(out)).toBe(false);
  });

  test('memoryBudget takes bytes or a size with a unit; anything else is a ConfigError naming the field and the value', async () => {
    const dir = await tmp();
    expect(config(dir, { memoryBudget: '8GiB' }).memoryBudget).toBe(8 * 2 ** 30);
    expect(config(dir, { memoryBudget: '512 MiB' }).memoryBudget).toBe(512 * 2 ** 20);
    expect(config(dir, { memoryBudget: '1.5GB' }).memoryBudget).toBe(1.5e9);
    expect(config(dir, { memoryBudget: 123456 }).memoryBudget).toBe(123456);
    expect(() => config(dir, { memoryBudget: '8 gigs' })).toThrow(ConfigError);
    expect(() => config(dir, { memoryBudget: '8 gigs' })).toThrow(/memoryBudget: "8 gigs" is not a memory size: .*"8GiB"/);
    expect(() => config(dir, { memoryBudget: '0MiB' })).toThrow(/memoryBudget: "0MiB" is not a memory size/);
    expect(() => config(dir, { memoryBudget: -5 })).toThrow(/memoryBudget/);
  });
});

describe('Partial FC', () => {
  test('config: the rate is in (0, 1]; losses and optimizers it cannot run are refused by what their head describes', async () => {
    const dir = await tmp();
    expect(() => config(dir, { head: { sampleRate: 0 } })).toThrow(/head\.sampleRate: Too small/);
    expect(() => config(dir, { head: { sampleRate: 1.5 } })).toThrow(/head\.sampleRate: Too big/);
    expect(() => config(dir, { head: { sampleRate: 0.5 }, loss: { name: 'magface' } }))
      .toThrow(/head\.sampleRate: Partial FC \(head\.sampleRate 0\.5\) is not supported with loss magface: its head differentiates its row context \(transform magface-easy has contextGradient\), which the sharded head computes without gradient; set head\.sampleRate: 1/);
    expect(() => config(dir, { head: { sampleRate: 0.5 }, loss: { name: 'sphereface', variant: 'a-softmax' } }))
      .toThrow(/not supported with loss sphereface: its head is custom code \(a LossHead of its own, not a head description/);
    expect(() => config(dir, { head: { sampleRate: 0.5 }, loss: { name: 'subcenter-arcface' } }))
      .toThrow(/not supported with loss subcenter-arcface: its head keeps 3 sub-centres per class/);
    expect(() => config(dir, { head: { sampleRate: 0.5 }, optimizer: { name: 'adamw' } }))
      .toThrow(/optimizer adamw is not supported with it: set optimizer\.name: sgd, or head\.sampleRate: 1/);
    expect(() => config(dir, { head: { sampleRate: 0.5 }, loss: { name: 'nosuchface' } })).toThrow(/loss\.name: unknown loss "nosuchface"/);
    // Rate 1 is the full head of any loss and optimizer.
    expect(config(dir, { head: { sampleRate: 1 }, loss: { name: 'magface' }, optimizer: { name: 'adamw' } }).head!.sampleRate).toBe(1);
    for (const name of ['normface', 'sphereface', 'cosface', 'x2softmax', 'elasticface', 'adaface']) expect(config(dir, { head: { sampleRate: 0.5 }, loss: { name } }).loss.name).toBe(name);
  });

  test('trains on the sampled rows only: every other row keeps its weight and momentum bit for bit; resume is exact', async () => {
    const C = 40;
    const partial = { head: { sampleRate: 0.5 }, steps: 20 };
    const initial = buildRun(config('unused', partial), plugins, createCpuBackend(), C);
    const w0 = await initial.head.readClassWeights();
    // The initial weights are those of the full head (same generator, same order).
    const full0 = buildRun(config('unused'), plugins, createCpuBackend(), C);
    expect(await full0.head.readClassWeights()).toEqual(w0);

    // One step, then a checkpoint.
    const dir = await tmp();
    const steps: StepInfo[] = [];
    await train(config(dir, partial), { plugins, ...cpu(), print: silent, stopAfter: 1, onStep: (s) => steps.push(s) });
    const first = steps[0].sampledClasses!;
    expect(first).toHaveLength(sampleBudget(C, 0.5)); // 20 rows: at most 8 classes in a batch of 8
    const run = await loadRun(dir, plugins, createCpuBackend());
    const w1 = await run.head.readClassWeights();
    const momentum = (await run.optimizer.state().find((s) => s.name === 'optim.arcface.weight.momentum')!.tensor.data()) as Float32Array;
    const picked = new Set(first);
    let unchanged = 0;
    for (let k = 0; k < C; k++) {
      const row = (a: Float32Array) => Array.from(a.subarray(k * 16, k * 16 + 16));
      if (picked.has(k)) {
        expect(row(w1), `sampled row ${k}`).not.toEqual(row(w0));
        expect(row(momentum).some((v) => v !== 0), `momentum of sampled row ${k}`).toBe(true);
      } else {
        expect(row(w1), `unsampled row ${k}`).toEqual(row(w0)); // toEqual on numbers is Object.is: bit for bit
        expect(row(momentum).every((v) => Object.is(v, 0)), `momentum of unsampled row ${k}`).toBe(true);
        unchanged++;
      }
    }
    expect(unchanged).toBe(C - 20);

    // Resume to the end equals an uninterrupted run (the classes of a step depend on (seed, step) only).
    const resumed = await train(config(dir, partial), { plugins, ...cpu(), print: silent, resume: true, onStep: (s) => steps.push(s) });
    const whole: StepInfo[] = [];
    const straight = await train(config(await tmp(), partial), { plugins, ...cpu(), print: silent, onStep: (s) => whole.push(s) });
    expect(resumed.losses.map((l) => l.loss)).toEqual(straight.losses.map((l) => l.loss));
    expect(steps.map((s) => Array.from(s.sampledClasses!))).toEqual(whole.map((s) => Array.from(s.sampledClasses!)));
    // The draw changes from step to step.
    expect(new Set(whole.map((s) => Array.from(s.sampledClasses!).join(','))).size).toBeGreaterThan(1);

    // It trains: finite losses that fall (batch 8 is noisy: the mean of the last five steps against
    // the first five), and not the losses of the full head.
    const losses = straight.losses.map((l) => l.loss);
    expect(losses).toHaveLength(20);
    expect(losses.every(Number.isFinite)).toBe(true);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-5))).toBeLessThan(0.8 * mean(losses.slice(0, 5)));
    const fullRun = await train(config(await tmp(), { steps: 20 }), { plugins, ...cpu(), print: silent });
    expect(fullRun.losses.map((l) => l.loss)).not.toEqual(losses);
    expect(losses[0]).not.toBe(fullRun.losses[0].loss);
    // With the full head every row moves in the first step (weight decay at least).
    const fullDir = await tmp();
    await train(config(fullDir), { plugins, ...cpu(), print: silent, stopAfter: 1 });
    const fw1 = await (await loadRun(fullDir, plugins, createCpuBackend())).head.readClassWeights();
    for (let k = 0; k < C; k++) expect(Array.from(fw1.subarray(k * 16, k * 16 + 16))).not.toEqual(Array.from(w0.subarray(k * 16, k * 16 + 16)));
  });

  test('the memory plan follows the rate: the sampled rows set the loss head and the workspace', async () => {
    const lines: string[] = [];
    const c = config(await tmp(), { head: { sampleRate: 0.5 }, steps: 1 });
    await train(c, { plugins, ...cpu(), print: (l) => lines.push(l) });
    const printed = memoryLines(lines);
    expect(printed.get('class weights')!.bytes).toBe(2 * 40 * 16 * 4);
    expect(printed.get('loss head')!.bytes).toBe(2 * 8 * 20 * 4);
    expect(printed.get('head workspace')!.bytes).toBe((4 + 4 + 4 + 4) * 20 * 16);
    expect(lines.some((l) => l.includes('Partial FC: 20 of 40 class rows per step'))).toBe(true);
  });

  test('rate 1 in a head section is the run without one: the same losses', async () => {
    const a = await train(config(await tmp()), { plugins, ...cpu(), print: silent });
    const b = await train(config(await tmp(), { head: { sampleRate: 1 } }), { plugins, ...cpu(), print: silent });
    expect(b.losses.map((l) => l.loss)).toEqual(a.losses.map((l) => l.loss));
    expect(b.memory).toEqual(a.memory);
  });

  test('head.weightPrecision float16: the float32 run\'s losses to float16 precision, the same checkpoint tensors, refused where it cannot run', async () => {
    const lines: string[] = [];
    const a = await train(config(await tmp()), { plugins, ...cpu(), print: silent });
    const b = await train(config(await tmp(), { head: { weightPrecision: 'float16' } }), { plugins, ...cpu(), print: (l) => void lines.push(l) });
    expect(lines.some((l) => /^head: float16 normalised class weights/.test(l))).toBe(true);
    expect(b.losses).toHaveLength(a.losses.length);
    for (const [i, l] of b.losses.entries()) {
      expect(Number.isFinite(l.loss)).toBe(true);
      expect(Math.abs(l.loss - a.losses[i].loss) / a.losses[i].loss).toBeLessThan(5e-3);
    }
    expect(b.losses[0].loss).not.toBe(a.losses[0].loss);
    const names = async (dir: string) => Object.keys(decodeSafetensors(new Uint8Array(await readFile(join(dir, CHECKPOINT_FILE)))).tensors).sort();
    expect(await names(b.outputDir)).toEqual(await names(a.outputDir));
    const dir = await tmp();
    expect(() => config(dir, { head: { weightPrecision: 'float16' }, loss: { name: 'magface' } }))
      .toThrow(/head\.weightPrecision: head\.weightPrecision float16 is not supported with loss magface/);
    expect(() => config(dir, { head: { weightPrecision: 'float16' }, optimizer: { name: 'adamw' } }))
      .toThrow(/set optimizer\.name: sgd, or head\.weightPrecision: float32/);
  });

  test('head.logitPrecision float16: the loss head\'s bytes halve, losses of the float32 run to float16 precision, refused where it cannot run', async () => {
    const lines: string[] = [];
    const a = await train(config(await tmp()), { plugins, ...cpu(), print: silent });
    const b = await train(config(await tmp(), { head: { logitPrecision: 'float16' } }), { plugins, ...cpu(), print: (l) => void lines.push(l) });
    expect(lines.some((l) => /^head: float16 logits and logit gradients/.test(l))).toBe(true);
    // 40 classes, batch 8: logits and their gradient 2 * 8 * 40 * 2 bytes instead of * 4.
    expect(memoryLines(lines).get('loss head')!.bytes).toBe(2 * 8 * 40 * 2);
    expect(a.memory.lossHead).toBe(2 * 8 * 40 * 4);
    for (const [i, l] of b.losses.entries()) expect(Math.abs(l.loss - a.losses[i].loss) / a.losses[i].loss).toBeLessThan(5e-3);
    expect(b.losses.map((l) => l.loss)).not.toEqual(a.losses.map((l) => l.loss));
    expect(() => config('unused', { head: { logitPrecision: 'float16' }, loss: { name: 'magface' } }))
      .toThrow(/head\.logitPrecision: head\.logitPrecision float16 is not supported with loss magface/);
  });

  test('activationPrecision float16: the activations measured at about half, losses of the float32 run to float16 precision', async () => {
    const lines: string[] = [];
    const a = await train(config(await tmp()), { plugins, ...cpu(), print: silent });
    const b = await train(config(await tmp(), { activationPrecision: 'float16' }), { plugins, ...cpu(), print: (l) => void lines.push(l) });
    expect(b.memory.activationPrecision).toBe('float16');
    expect(a.memory.activationPrecision).toBe('float32');
    // Every activation of the smallnet is packed but the input batch and the embeddings, which stay
    // float32 (a large share of this 16x16 network's; the exact bytes are tested per backend).
    const ratio = b.memory.activations / a.memory.activations;
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(0.65);
    expect(memoryLines(lines).get('activations')!.bytes).toBe(b.memory.activations);
    expect(lines.find((l) => l.startsWith('memory: activations'))).toContain('float16 storage, measured by a dry forward');
    expect(b.losses).toHaveLength(a.losses.length);
    for (const [i, l] of b.losses.entries()) expect(Math.abs(l.loss - a.losses[i].loss) / a.losses[i].loss).toBeLessThan(5e-3);
    expect(b.losses.map((l) => l.loss)).not.toEqual(a.losses.map((l) => l.loss));
    expect(() => config('unused', { activationPrecision: 'bfloat16' })).toThrow(/activationPrecision/);
  });

  test('a static power-of-two loss scale trains bit for bit as no scale, with the plugin head and with Partial FC', async () => {
    for (const extra of [{}, { head: { sampleRate: 0.5 } }]) {
      const a = await train(config(await tmp(), extra), { plugins, ...cpu(), print: silent });
      const b = await train(config(await tmp(), { ...extra, lossScale: 1024 }), { plugins, ...cpu(), print: silent });
      expect(b.losses.map((l) => [l.loss, l.gradNorm])).toEqual(a.losses.map((l) => [l.loss, l.gradNorm]));
      expect(b.losses.every((l) => l.lossScale === 1024 && !l.skipped)).toBe(true);
    }
  });

  test('a dynamic loss scale skips the steps whose gradients overflow, halving the scale, then trains; resume keeps the scale', async () => {
    const lines: string[] = [];
    const dir = await tmp();
    const c = config(dir, { lossScale: { mode: 'dynamic', initial: 2 ** 63, growthInterval: 1000 }, steps: 12 });
    const first = await train(c, { plugins, ...cpu(), print: (l) => void lines.push(l), stopAfter: 8 });
    const skipped = first.losses.filter((l) => l.skipped);
    expect(skipped.length).toBeGreaterThan(0);
    // Each overflow halves the scale; the steps after the last one train at the scale it left.
    skipped.forEach((l, i) => expect(l.lossScale).toBe(2 ** (63 - i)));
    const applied = first.losses.filter((l) => !l.skipped);
    expect(applied.length).toBeGreaterThan(0);
    for (const l of applied) {
      expect(l.lossScale).toBe(2 ** (63 - skipped.length));
      expect(Number.isFinite(l.loss) && Number.isFinite(l.gradNorm!)).toBe(true);
    }
    expect(lines.filter((l) => /^step \d+: gradients overflow at loss scale \d+; step skipped, scale now \d+$/.test(l))).toHaveLength(skipped.length);
    const second = await train(c, { plugins, ...cpu(), print: silent, resume: true });
    expect(second.steps).toBe(12);
    expect(second.losses.slice(8).every((l) => l.lossScale === 2 ** (63 - skipped.length))).toBe(true);
    expect(() => config(dir, { lossScale: -1 })).toThrow(/lossScale/);
  });

  test('a YAML config takes head.sampleRate and memoryBudget', async () => {
    const dir = await tmp();
    const path = join(dir, 'pfc.yaml');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, 'data:\n  train: { name: synthetic }\nbackbone: { name: smallnet }\nloss: { name: cosface }\nsteps: 1\nhead: { sampleRate: 0.1 }\nmemoryBudget: 2GiB\n');
    const c = await loadConfig(path, plugins);
    expect(c.head!.sampleRate).toBe(0.1);
    expect(c.memoryBudget).toBe(2 * 2 ** 30);
  });
});
