/**
 * The plugin as a user of `fr` meets it: installed beside a config in a folder outside the
 * workspace, named in the config's `plugins:` list, trained with `fr train` (Partial FC at rate 0.5
 * over two shards), evaluated from its
 * checkpoint with `fr eval`, and checked on the reference cases this package ships with
 * `fr conformance cases --plugin @fr-example/quadface`.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { decodeSafetensors } from '@fr/core';

const here = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
// The trainer from its sources (the workspace runs untranspiled TypeScript through tsx).
const cli = join(realpathSync(join(here, 'node_modules/@fr/trainer')), 'src/cli.ts');
const tsx = pathToFileURL(require.resolve('tsx')).href;

/** Runs fr asynchronously, so the test worker keeps answering its runner meanwhile. */
async function fr(cwd: string, ...args: string[]): Promise<string> {
  try {
    return (await promisify(execFile)('node', ['--conditions=@fr/source', '--import', tsx, cli, ...args], { cwd, encoding: 'utf8' })).stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`fr ${args.join(' ')} failed: ${err.stderr || err.message}\n${err.stdout ?? ''}`);
  }
}

test('fr train, fr eval and fr conformance load the plugin from a config and from --plugin outside the workspace', async () => {
  const project = mkdtempSync(join(tmpdir(), 'fr-quadface-'));
  mkdirSync(join(project, 'node_modules/@fr-example'), { recursive: true });
  symlinkSync(here, join(project, 'node_modules/@fr-example/quadface'), 'dir');
  mkdirSync(join(project, 'configs'));
  // The config lives in a sub-folder: the plugin resolves from there, up to the project's node_modules.
  writeFileSync(join(project, 'configs/quadface.yaml'), `
plugins: ['@fr-example/quadface']
seed: 0
backend: cpu
output: runs/quadface
data:
  train: { name: synthetic, identities: 12, imagesPerIdentity: 4, size: 16 }
  eval: [{ name: synthetic, label: held-out, testIdentities: 20, imagesPerIdentity: 4, pairsPerFold: 10, size: 16 }]
backbone: { name: smallnet, inputSize: 16, embeddingDim: 16, stages: 2, width: 8 }
loss: { name: quadface, s: 16, m: 0.2, q: 0.1 }
# Partial FC over two CPU shards (the second on a worker thread): what a plugin gets with no code of its own.
head: { sampleRate: 0.5, shards: 2 }
batchSize: 8
steps: 4
logEvery: 1
`);
  const trained = await fr(project, 'train', '--config', 'configs/quadface.yaml');
  expect(trained).toMatch(/done: 4 steps/);
  const checkpoint = join(project, 'runs/quadface/checkpoint.safetensors');
  const meta = decodeSafetensors(readFileSync(checkpoint), checkpoint).metadata;
  const recorded = JSON.parse(meta.plugins);
  expect(recorded).toEqual([{ specifier: '@fr-example/quadface', path: expect.stringMatching(/third-party-loss\/src\/index\.ts$/), version: '0.1.0' }]);
  expect(Object.keys(decodeSafetensors(readFileSync(checkpoint), checkpoint).tensors)).toEqual(expect.arrayContaining(['head.quadface.weight.shard0of2', 'head.quadface.weight.shard1of2']));

  // fr eval loads the plugin the checkpoint records, with no config and no --plugin.
  const evaluated = await fr(project, 'eval', '--checkpoint', 'runs/quadface', '--backend', 'cpu');
  const final = /held-out: accuracy ([\d.]+)%/.exec(trained)![1];
  expect(evaluated).toContain(`held-out: accuracy ${final}%`);

  // Without --plugin, the reference cases name a loss fr does not have; with it, they pass.
  await expect(fr(project, 'conformance', join(here, 'cases'))).rejects.toThrow(/no loss named "quadface"/);
  const conformance = await fr(project, 'conformance', join(here, 'cases'), '--plugin', '@fr-example/quadface');
  expect(conformance.trim().split('\n').at(-1)).toBe('2 passed, 0 failed');
});
