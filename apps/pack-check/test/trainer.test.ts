/**
 * The `fr` command as a user installs it: @fr/trainer and every @fr package it depends on are built,
 * packed with `pnpm pack` and installed with npm into an empty project outside the workspace, with
 * the example loss plugin beside them. Then the installed bin runs: `fr --version`, `fr conformance`
 * on an ArcFace reference case, `fr conformance --plugin` on the plugin's shipped cases, and a tiny
 * `fr train` whose config names the plugin in `plugins:`.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';

// Asynchronous, so the test worker keeps answering its runner during the long builds and installs.
const run = async (command: string, args: string[], cwd: string) =>
  (await promisify(execFile)(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 << 20 })).stdout;

const root = resolve(__dirname, '../../..');
const dirs = (parent: string) => readdirSync(join(root, parent)).map((d) => `${parent}/${d}`);
const packages = [
  'packages/core', 'packages/backend-cpu', 'packages/backend-wasm', 'packages/backend-webgpu', 'packages/data', 'packages/eval', 'packages/onnx', 'packages/scale',
  ...dirs('packages/losses'), ...dirs('packages/backbones'), 'apps/trainer', 'examples/third-party-loss',
];

test('the packed trainer installs with npm outside the workspace and its fr bin runs, plugins included', async () => {
  const work = mkdtempSync(join(tmpdir(), 'fr-pack-trainer-'));
  const tarballs = join(work, 'tarballs');
  const app = join(work, 'app');
  // In dependency order: each package's prepack builds it against the dist/ of those before it.
  for (const p of packages) await run('pnpm', ['pack', '--pack-destination', tarballs], join(root, p));
  const files = readdirSync(tarballs).filter((f) => f.endsWith('.tgz')).sort();
  expect(files).toHaveLength(packages.length);
  expect(files).toContain('fr-trainer-0.1.0.tgz');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...files.map((f) => join(tarballs, f))], app);
  const fr = (...args: string[]) => run(join(app, 'node_modules/.bin/fr'), args, app);

  expect((await fr('--version')).trim()).toBe('fr 0.1.0');
  copyFileSync(join(__dirname, 'arcface-small.json'), join(app, 'arcface-small.json'));
  expect((await fr('conformance', 'arcface-small.json')).trim().split('\n').at(-1)).toBe('1 passed, 0 failed');
  const cases = join(app, 'node_modules/@fr-example/quadface/cases');
  expect((await fr('conformance', cases, '--plugin', '@fr-example/quadface')).trim().split('\n').at(-1)).toBe('2 passed, 0 failed');

  writeFileSync(join(app, 'quadface.yaml'), `
plugins: ['@fr-example/quadface']
backend: cpu
output: runs/quadface
data:
  train: { name: synthetic, identities: 8, imagesPerIdentity: 4, size: 16 }
backbone: { name: smallnet, inputSize: 16, embeddingDim: 16, stages: 2, width: 8 }
loss: { name: quadface }
batchSize: 8
steps: 2
`);
  expect(await fr('train', '--config', 'quadface.yaml')).toMatch(/done: 2 steps/);
}, 1_200_000);
