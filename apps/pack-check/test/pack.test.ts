/**
 * Install only what you need: @fr/core, @fr/backend-cpu and @fr/arcface are packed with
 * `pnpm pack` (which builds each through its prepack script and rewrites workspace: ranges),
 * installed with npm into an empty project outside the workspace, and run from a plain .mjs file.
 * No other @fr package is present there.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

// Asynchronous, so the test worker keeps answering its runner during the builds and the install.
const run = async (command: string, args: string[], cwd: string) =>
  (await promisify(execFile)(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 })).stdout;

const root = resolve(__dirname, '../../..');
const packages = ['packages/core', 'packages/backend-cpu', 'packages/losses/arcface'];

test('the packed core, CPU backend and ArcFace run an ArcFace head on their own, in the calling thread and on a worker thread', async () => {
  const work = mkdtempSync(join(tmpdir(), 'fr-pack-'));
  const tarballs = join(work, 'tarballs');
  const app = join(work, 'app');
  for (const p of packages) {
    await run('pnpm', ['pack', '--pack-destination', tarballs], join(root, p));
  }
  const files = readdirSync(tarballs).filter((f) => f.endsWith('.tgz')).sort();
  expect(files).toEqual(['fr-arcface-0.1.0.tgz', 'fr-backend-cpu-0.1.0.tgz', 'fr-core-0.1.0.tgz']);
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', ...files.map((f) => join(tarballs, f))], app);
  expect(readdirSync(join(app, 'node_modules/@fr')).sort()).toEqual(['arcface', 'backend-cpu', 'core']);

  const golden = JSON.parse(readFileSync(join(__dirname, 'arcface-small.json'), 'utf8'));
  writeFileSync(join(app, 'case.json'), JSON.stringify(golden));
  writeFileSync(join(app, 'main.mjs'), `
import { readFileSync } from 'node:fs';
import { createCpuBackend } from '@fr/backend-cpu';
import { backward, createRng, tensor, tidy } from '@fr/core';
import { arcface } from '@fr/arcface';
const c = JSON.parse(readFileSync('case.json', 'utf8'));
const { batch, dim, classes } = c.shape;
const backend = createCpuBackend();
const head = arcface.createHead({ backend, numClasses: classes, embeddingDim: dim, params: arcface.params.parse(c.params), rng: createRng(0) });
backend.write(head.parameters[0].tensor.buffer(), Float32Array.from(c.inputs.weights));
const x = tensor(backend, c.inputs.embeddings, [batch, dim], { requiresGrad: true });
const loss = tidy(() => { const l = head.forward(x, Int32Array.from(c.inputs.labels)); backward(l); return l; });
const gradEmbeddings = Array.from(await x.grad.data());
const gradWeights = Array.from(await head.parameters[0].tensor.grad.data());
// The packed worker entry: the same head with its kernels on a worker thread (dist/worker-thread.js).
const { createWorkerCpuBackend } = await import('@fr/backend-cpu/node');
const worker = createWorkerCpuBackend();
const wHead = arcface.createHead({ backend: worker, numClasses: classes, embeddingDim: dim, params: arcface.params.parse(c.params), rng: createRng(0) });
worker.write(wHead.parameters[0].tensor.buffer(), Float32Array.from(c.inputs.weights));
const wLoss = tidy(() => wHead.forward(tensor(worker, c.inputs.embeddings, [batch, dim]), Int32Array.from(c.inputs.labels)));
const workerLoss = await wLoss.item();
worker.dispose();
console.log(JSON.stringify({ loss: await loss.item(), gradEmbeddings, gradWeights, workerLoss }));
`);
  const out = JSON.parse(await run('node', ['main.mjs'], app));
  const within = (got: number[], want: number[]) => {
    const maxWant = Math.max(...want.map(Math.abs));
    const err = Math.max(...want.map((w, i) => Math.abs(got[i] - w)));
    return err <= golden.tolerance.atol + golden.tolerance.rtol * maxWant;
  };
  expect(out.workerLoss).toBe(out.loss);
  expect(Math.abs(out.loss - golden.expected.loss)).toBeLessThan(golden.tolerance.atol + golden.tolerance.rtol * Math.abs(golden.expected.loss));
  expect(within(out.gradEmbeddings, golden.expected.gradEmbeddings)).toBe(true);
  expect(within(out.gradWeights, golden.expected.gradWeights)).toBe(true);
});
