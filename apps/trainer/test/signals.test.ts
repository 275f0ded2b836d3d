/**
 * Ctrl-C, as a user sends it: `fr` runs as a child process and gets SIGINT. Training saves a
 * checkpoint at the current step and exits 130; a second Ctrl-C quits at once; other commands end
 * within two seconds.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decodeSafetensors } from '@fr/core';
import { train } from '../src/index.js';
import { RunSignal } from '../src/interrupt.js';
import { cpuOptions, runCli, tinyConfig, tmp } from './helpers.js';

/** A run far longer than any test: it only ends by Ctrl-C. */
async function longConfig(dir: string): Promise<string> {
  const path = join(dir, 'long.yaml');
  await writeFile(path, [
    'seed: 1', 'backend: cpu', `output: ${join(dir, 'run')}`,
    'data: { train: { name: synthetic, identities: 12, imagesPerIdentity: 4, size: 16 } }',
    'backbone: { name: smallnet, inputSize: 16, embeddingDim: 16, stages: 2, width: 8 }',
    'loss: { name: arcface, s: 16, m: 0.2 }', 'batchSize: 8', 'steps: 100000', 'logEvery: 1',
  ].join('\n'));
  return path;
}

/** Sends SIGINT `times` times (`gap` ms apart) once stderr matches `when`; resolves with the run and the ms from the first signal to exit. */
async function interruptWhen(args: string[], when: RegExp, times = 1, gap = 0) {
  let sentAt = 0;
  let savedAt = 0;
  const r = await runCli(args, {
    onStderr: (text, child) => {
      if (sentAt && !savedAt && /interrupted: checkpoint saved/.test(text)) savedAt = performance.now();
      if (sentAt || !when.test(text)) return;
      sentAt = performance.now();
      for (let i = 0; i < times; i++) setTimeout(() => child.kill('SIGINT'), i * gap);
    },
  });
  return { ...r, ms: performance.now() - sentAt, savedMs: savedAt - sentAt, sent: sentAt > 0 };
}

describe('the Ctrl-C state of a run', () => {
  test('before training: quit at once; first: save; second: quit, but only after a checkpoint write ends', async () => {
    const events: string[] = [];
    const signal = new RunSignal(() => events.push('quit'), (line) => events.push(line.trim()));
    signal.press();
    expect(events).toEqual(['quit']);
    events.length = 0;
    signal.training = true;
    signal.press();
    expect(signal.interrupted).toBe(true);
    expect(events).toEqual(['interrupt: saving a checkpoint at the current step (Ctrl-C again to quit at once)']);
    let finish = () => {};
    const write = signal.guardWrite(() => new Promise<void>((resolve) => { finish = resolve; }).then(() => { events.push('written'); }));
    signal.press();
    expect(events.at(-1)).toBe('interrupt: quitting once the checkpoint being written is complete');
    finish();
    await write;
    expect(events.slice(-2)).toEqual(['written', 'quit']);
  });
});

describe('Ctrl-C inside a run (in process)', () => {
  test('during an evaluation: the evaluation stops between batches and the step is saved', async () => {
    const dir = await tmp();
    const signal = { interrupted: false };
    const r = await train(tinyConfig(dir, { evalEvery: 2 }), cpuOptions({ signal, onStep: (s) => { if (s.step === 2) signal.interrupted = true; } }));
    expect(r.interrupted).toBe(true);
    expect(r.steps).toBe(2);
    expect(r.evaluations).toEqual([]);
    const meta = decodeSafetensors(await readFile(join(dir, 'checkpoint.safetensors'))).metadata;
    expect(meta.step).toBe('2');
    const resumed = await train(tinyConfig(dir, { evalEvery: 2 }), cpuOptions({ resume: true }));
    expect(resumed.steps).toBe(6);
    expect(resumed.evaluations.map((e) => e.step)).toEqual([4, 6]);
  });
});

describe('Ctrl-C', () => {
  test.concurrent('fr train: the first saves a checkpoint at the current step and exits 130 within 2 s', async () => {
    const dir = await tmp();
    const r = await interruptWhen(['train', '--config', await longConfig(dir)], /step \d+\/100000/);
    expect(r.sent).toBe(true);
    expect(r.code).toBe(130);
    // The answer (a checkpoint on disk) within 2 s; the exit follows once the report is written
    // (about 0.5 s in all on an idle machine, more when the test suite loads both cores).
    expect(r.savedMs).toBeGreaterThan(0);
    expect(r.savedMs).toBeLessThan(2000);
    expect(r.ms).toBeLessThan(5000);
    const step = Number(/interrupted: checkpoint saved at step (\d+)/.exec(r.stderr)?.[1]);
    expect(step).toBeGreaterThan(0);
    const meta = decodeSafetensors(await readFile(join(dir, 'run', 'checkpoint.safetensors'))).metadata;
    expect(Number(meta.step)).toBe(step);
  });

  test.concurrent('fr train: a second quits at once, never leaving a half-written checkpoint', async () => {
    const dir = await tmp();
    const r = await interruptWhen(['train', '--config', await longConfig(dir)], /step \d+\/100000/, 2, 5);
    expect(r.code).toBe(130);
    expect(r.ms).toBeLessThan(2000);
    // Either no checkpoint yet, or a whole one; never a temporary file.
    const bytes = await readFile(join(dir, 'run', 'checkpoint.safetensors')).catch(() => null);
    if (bytes) expect(() => decodeSafetensors(bytes)).not.toThrow();
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(join(dir, 'run'))).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test.concurrent('fr compare: stops at the first, with the checkpoint of the loss it was training', async () => {
    const dir = await tmp();
    const path = await longConfig(dir);
    await writeFile(path, `${await readFile(path, 'utf8')}\ndata: { train: { name: synthetic, identities: 12, imagesPerIdentity: 4, size: 16 }, eval: [{ name: synthetic, testIdentities: 20, imagesPerIdentity: 4, pairsPerFold: 5, size: 16 }] }\n`.replace(/^data: .*\n/m, ''));
    const r = await interruptWhen(['compare', '--config', path, '--losses', 'arcface,cosface'], /step \d+\/100000/);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/error: fr compare: interrupted while training arcface; its checkpoint is in .*run\/arcface/);
    expect(r.savedMs).toBeLessThan(2000);
    expect(r.stderr).not.toMatch(/training smallnet with cosface/);
  });

  test.concurrent('fr eval ends within 2 s', async () => {
    const dir = await tmp();
    await train(tinyConfig(dir, { steps: 1, data: { ...tinyConfig(dir).data, eval: [] } }), cpuOptions());
    // 6,000 held-out images: several seconds of embedding on the CPU.
    const r = await interruptWhen(['eval', '--checkpoint', dir, '--data', 'synthetic', '--backend', 'cpu'], /backend: /);
    expect(r.sent).toBe(true);
    expect(r.code === 130 || r.signal === 'SIGINT').toBe(true);
    expect(r.stdout).not.toMatch(/accuracy/);
    expect(r.ms).toBeLessThan(2000);
  });
});
