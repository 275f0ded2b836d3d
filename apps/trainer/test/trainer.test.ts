import { mkdtemp, readFile, writeFile, mkdir, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { tinyTrainConfig } from './tiny-config.js';
import { ConfigError } from '@fr/core';
import {
  compareCommand, conformanceCommand, defaultPlugins, evalCommand, exportOnnxCommand, loadConfig, NonFiniteLossError, train,
  type TrainConfig,
} from '../src/index.js';

const plugins = defaultPlugins;
const silent = () => {};

function tinyConfig(output: string, overrides: Record<string, unknown> = {}): TrainConfig {
  return tinyTrainConfig(output, 3, {
    train: { name: 'synthetic', identities: 12, imagesPerIdentity: 4, size: 16 },
    eval: [{ name: 'synthetic', label: 'tiny-pairs', testIdentities: 20, imagesPerIdentity: 4, pairsPerFold: 5, size: 16 }],
  }, overrides);
}

const tmp = () => mkdtemp(join(tmpdir(), 'fr-trainer-'));

describe('fr train', () => {
  test('trains, logs, evaluates, checkpoints and writes a report', async () => {
    const out = await tmp();
    const result = await train(tinyConfig(out), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent, baseline: true });
    expect(result.steps).toBe(6);
    expect(result.losses.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(result.losses.every((l) => Number.isFinite(l.loss) && l.loss > 0)).toBe(true);
    const log = (await readFile(join(out, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log.filter((l) => 'loss' in l)).toHaveLength(6);
    expect(log.at(-1).eval[0].set).toBe('tiny-pairs');
    const final = result.evaluations.at(-1)!.results[0];
    expect(final.pairs).toBe(100);
    expect(final.accuracyMean).toBeGreaterThan(0.3);
    expect(final.accuracyMean).toBeLessThanOrEqual(1);
    expect(result.baseline[0].set).toBe('tiny-pairs (raw pixels)');
    const html = await readFile(result.reportPath, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('Training report: smallnet + arcface');
    expect(html).toContain('TAR@FAR=1e-3');
  });

  test('--resume continues exactly: the same losses as an uninterrupted run', async () => {
    const full = await train(tinyConfig(await tmp()), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent });
    const dir = await tmp();
    const first = await train(tinyConfig(dir), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent, stopAfter: 3 });
    expect(first.steps).toBe(3);
    const second = await train(tinyConfig(dir), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent, resume: true });
    expect(second.steps).toBe(6);
    expect(second.losses.map((l) => l.loss)).toEqual(full.losses.map((l) => l.loss));
  });

  test('Ctrl-C saves a checkpoint that resumes', async () => {
    const dir = await tmp();
    const signal = { interrupted: false };
    const r = await train(tinyConfig(dir), {
      plugins, backend: createCpuBackend(), backendReason: 'cpu', signal,
      print: (line) => { if (line.startsWith('training')) signal.interrupted = true; },
    });
    expect(r.interrupted).toBe(true);
    expect(r.steps).toBe(1);
    const resumed = await train(tinyConfig(dir), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent, resume: true });
    expect(resumed.steps).toBe(6);
  });

  test('a NaN loss stops the run with a message, or skips the step when configured', async () => {
    const huge = { optimizer: { name: 'sgd', lr: 1e30, momentum: 0.9 }, clipGradNorm: null };
    await expect(train(tinyConfig(await tmp(), huge), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent }))
      .rejects.toThrow(NonFiniteLossError);
    await expect(train(tinyConfig(await tmp(), huge), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent }))
      .rejects.toThrow(/loss (NaN|Infinity|-Infinity).* at step \d+; stopped\. The last good checkpoint is/);
    // Skipping the non-finite steps of a diverged model trains nothing: the run stops instead of
    // saving weights that hold Inf and finishing with exit 0.
    const skipDir = await tmp();
    const base = tinyConfig(skipDir);
    const skipConfig = tinyConfig(skipDir, { ...huge, onNonFinite: 'skip', data: { ...base.data, eval: [] } });
    const skipped = await train(skipConfig, { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent }).catch((e: Error) => e);
    expect(skipped).toBeInstanceOf(NonFiniteLossError);
    expect((skipped as Error).message).toMatch(/tensor backbone\.\S+ holds (NaN|Infinity|-Infinity) .*training diverged; not saved/);
    expect(await readFile(join(skipDir, 'checkpoint.safetensors')).catch(() => null)).toBeNull();
  });
});

describe('configs', () => {
  test('errors name the file, the field and the allowed values', async () => {
    const dir = await tmp();
    const path = join(dir, 'bad.yaml');
    await writeFile(path, 'data:\n  train: { name: synthetic }\nbackbone: { name: smallnet }\nloss: { name: arcfase }\nbackend: tpu\nsteps: 2\n');
    await expect(loadConfig(path, plugins)).rejects.toThrow(ConfigError);
    const message = await loadConfig(path, plugins).catch((e: Error) => e.message);
    expect(message).toMatch(/bad\.yaml is invalid/);
    expect(message).toMatch(/backend: .*"auto".*"cpu".*"webgpu"/);
    expect(message).toMatch(/loss\.name: unknown loss "arcfase"; installed: softmax, l2softmax, normface, .*arcface/);
    await writeFile(path, 'data:\n  train: { name: synthetic }\nbackbone: { name: smallnet }\nloss: { name: arcface, m: -1 }\nsteps: 1\n');
    expect(await loadConfig(path, plugins).catch((e: Error) => e.message)).toMatch(/loss\.m: Too small: expected number to be >=0/);
    await writeFile(path, 'data:\n  train: { name: synthetic }\nbackbone: { name: smallnet }\nloss: { name: arcface }\n');
    expect(await loadConfig(path, plugins).catch((e: Error) => e.message)).toMatch(/steps: give exactly one of steps and epochs/);
  });
  test('the demo config is valid', async () => {
    const { demoConfigPath } = await import('../src/demo.js');
    const c = await loadConfig(demoConfigPath, plugins);
    expect(c.loss.name).toBe('arcface');
    expect(c.backbone.name).toBe('smallnet');
  });
});

describe('fr eval, compare, export, conformance', () => {
  test('eval reproduces the final verification of a run from its checkpoint', async () => {
    const out = await tmp();
    const result = await train(tinyConfig(out), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent });
    const [again] = await evalCommand(out, null, plugins, createCpuBackend());
    const final = result.evaluations.at(-1)!.results[0];
    expect(again.accuracyMean).toBeCloseTo(final.accuracyMean, 10);
    expect(again.auc).toBeCloseTo(final.auc, 6);
  });

  test('compare trains each loss on the same budget and tabulates them', async () => {
    const out = await tmp();
    const { rows, table, reportPath } = await compareCommand(tinyConfig(out, { steps: 3 }), ['arcface', 'cosface'], { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent });
    expect(rows.map((r) => r.loss)).toEqual(['arcface', 'cosface']);
    expect(table.split('\n')).toHaveLength(4);
    expect(table).toMatch(/\| arcface \| \d+\.\d\d \|/);
    expect(await readFile(reportPath, 'utf8')).toContain('Loss comparison');
    await expect(compareCommand(tinyConfig(out), ['arcface', 'nosuchloss'], { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent }))
      .rejects.toThrow(/unknown loss nosuchloss; installed: /);
  });

  test('export writes an ONNX model whose embeddings match (onnxruntime-node)', async () => {
    const out = await tmp();
    await train(tinyConfig(out, { steps: 2 }), { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent });
    const bytes = await exportOnnxCommand(out, plugins, createCpuBackend());
    expect(bytes.length).toBeGreaterThan(1000);
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(bytes);
    const input = new Float32Array(2 * 3 * 16 * 16).map((_, i) => Math.sin(i));
    const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, [2, 3, 16, 16]) });
    const got = result[session.outputNames[0]].data as Float32Array;
    const { loadRun } = await import('../src/index.js');
    const { tensor, noGrad, tidy } = await import('@fr/core');
    const backend = createCpuBackend();
    const run = await loadRun(out, plugins, backend);
    const want = await noGrad(() => tidy(() => run.module.forward(tensor(backend, input, [2, 3, 16, 16]), { training: false }))).data();
    expect(got.length).toBe(want.length);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    expect(worst).toBeLessThan(1e-4);
  });

  test('conformance runs reference files and reports bad ones as failed cases', async () => {
    const dir = await tmp();
    await mkdir(join(dir, 'cases'));
    for (const f of ['arcface-small.json', 'cosface-small.json']) await copyFile(join(__dirname, 'fixtures', f), join(dir, 'cases', f));
    await writeFile(join(dir, 'cases', 'broken.json'), '{"name": "x"');
    const good = JSON.parse(await readFile(join(__dirname, 'fixtures', 'arcface-small.json'), 'utf8'));
    await writeFile(join(dir, 'cases', 'unknown.json'), JSON.stringify({ ...good, name: 'mystery', loss: 'mysteryface' }));
    const { results, text } = await conformanceCommand([join(dir, 'cases')], plugins, createCpuBackend());
    expect(results.map((r) => r.pass)).toEqual([true, false, true, false]);
    expect(text).toMatch(/FAIL .*broken\.json.*not valid JSON/);
    expect(text).toMatch(/FAIL mystery.*mysteryface/);
    expect(text.trim().split('\n').at(-1)).toBe('2 passed, 2 failed');
  });

  test('conformance reads sub-centers, given margins and running state; a case naming a missing state fails, naming it', async () => {
    const dir = await tmp();
    await mkdir(join(dir, 'cases'));
    const files = ['curricularface-default-small.json', 'elasticface-cos-default-small.json', 'subcenter-arcface-exact-small.json'];
    for (const f of files) await copyFile(join(__dirname, 'fixtures', f), join(dir, 'cases', f));
    const stateless = JSON.parse(await readFile(join(__dirname, 'fixtures', 'subcenter-arcface-exact-small.json'), 'utf8'));
    await writeFile(join(dir, 'cases', 'z-state.json'), JSON.stringify({ ...stateless, name: 'no-such-state', expected: { ...stateless.expected, state: { 'subcenter-arcface.t': 0 } } }));
    const { results, text } = await conformanceCommand([join(dir, 'cases')], plugins, createCpuBackend());
    expect(results.map((r) => r.pass)).toEqual([true, true, true, false]);
    expect(text).toMatch(/PASS curricularface-default-small .*  state\.curricularface\.t \S+ <= \S+/);
    expect(text).toMatch(/FAIL no-such-state .*expected\.state names subcenter-arcface\.t, but the head of subcenter-arcface has no such buffer \(has: none\)/);
    expect(text.trim().split('\n').at(-1)).toBe('3 passed, 1 failed');
  });
});
