/**
 * Plugins loaded at run time: from a config's plugins: list (resolved from the config's folder) and
 * from --plugin, recorded in checkpoints and loaded again from there; every failure names the plugin.
 */
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { createRng, decodeSafetensors } from '@fr/core';
import { writeTorchFile } from '@fr/data';
import {
  commandLinePlugins, defaultPlugins, evalCommand, importCommand, loadConfigWithPlugins, loadPlugins, loadRun, reloadPlugins, train,
} from '../src/index.js';

const fixtures = fileURLToPath(new URL('./fixtures/plugins/', import.meta.url));
const silent = () => {};

/** A project folder outside the package: configs/ holds the config, configs/plugins links the fixtures. */
async function project(config: string): Promise<{ dir: string; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fr-plugins-'));
  await mkdir(join(dir, 'configs'));
  await symlink(fixtures, join(dir, 'configs/plugins'), 'dir');
  const path = join(dir, 'configs/run.yaml');
  await writeFile(path, config);
  return { dir, path };
}

const body = (output: string, backbone = 'tiny-net', loss = 'arcface') => `
seed: 1
backend: cpu
output: ${output}
data:
  train: { name: synthetic, identities: 12, imagesPerIdentity: 4, size: 16 }
  eval: [{ name: synthetic, label: tiny-pairs, testIdentities: 20, imagesPerIdentity: 4, pairsPerFold: 5, size: 16 }]
backbone: { name: ${backbone}, inputSize: 16, embeddingDim: 16, stages: 2, width: 8 }
loss: { name: ${loss}, s: 16, m: 0.2 }
batchSize: 8
steps: 4
logEvery: 1
`;

test('a config\'s plugins: list adds a backbone; the checkpoint records it and eval and --resume load it again', async () => {
  const out = join(await mkdtemp(join(tmpdir(), 'fr-plugins-run-')), 'run');
  const { path } = await project(`plugins: [./plugins/tiny-net.mjs]\n${body(out)}`);
  const { config, plugins } = await loadConfigWithPlugins(path, defaultPlugins);
  expect(config.backbone.name).toBe('tiny-net');
  expect(config.plugins).toEqual(['./plugins/tiny-net.mjs']);
  // Exported by name and as default: one backbone.
  expect(plugins.backbones.filter((b) => b.name === 'tiny-net')).toHaveLength(1);
  expect(plugins.backbones.length).toBe(defaultPlugins.backbones.length + 1);
  const source = { specifier: './plugins/tiny-net.mjs', path: realpathSync(join(fixtures, 'tiny-net.mjs')), version: '0.1.0' };
  expect(plugins.sources).toEqual([source]);

  const first = await train(config, { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent, stopAfter: 2 });
  expect(first.steps).toBe(2);
  const checkpoint = join(out, 'checkpoint.safetensors');
  expect(JSON.parse(decodeSafetensors(await readFile(checkpoint), checkpoint).metadata.plugins)).toEqual([source]);

  // A config without the plugins: list resumes: the checkpoint's plugins are loaded again.
  const bare = await project(body(out));
  await expect(loadConfigWithPlugins(bare.path, defaultPlugins)).rejects.toThrow(/backbone.*tiny-net.*smallnet/s);
  const notes: string[] = [];
  const resumed = await loadConfigWithPlugins(bare.path, defaultPlugins, { resume: true, notes: (l) => notes.push(l) });
  expect(resumed.plugins.sources).toEqual([source]);
  expect(notes).toEqual([]);
  const second = await train(resumed.config, { plugins: resumed.plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent, resume: true });
  expect(second.steps).toBe(4);

  // eval from the checkpoint alone, with the built-in plugins only.
  const run = await loadRun(out, defaultPlugins, createCpuBackend(), silent);
  expect(run.config.backbone.name).toBe('tiny-net');
  expect(run.plugins.sources).toEqual([source]);
  const [report] = await evalCommand(out, null, defaultPlugins, createCpuBackend());
  expect(report.accuracyMean).toBe(second.evaluations.at(-1)!.results[0].accuracyMean);
});

test('a recorded plugin that is gone is an error naming it; --plugin from its new place serves instead', async () => {
  const checkpoint = '/nowhere/run/checkpoint.safetensors';
  const gone = [{ specifier: './moved.mjs', path: '/nowhere/moved.mjs', version: '1.0.0' }];
  await expect(reloadPlugins(defaultPlugins, gone, checkpoint)).rejects.toThrow(
    /plugin \.\/moved\.mjs \(recorded in \/nowhere\/run\/checkpoint\.safetensors\) cannot be found: \/nowhere\/moved\.mjs is gone/,
  );
  const given = await loadPlugins(defaultPlugins, commandLinePlugins(['./tiny-net.mjs'], fixtures));
  const byPackage = [{ specifier: './tiny-net.mjs', path: '/nowhere/tiny-net.mjs', version: '0.1.0' }];
  const reloaded = await reloadPlugins(given, byPackage, checkpoint);
  expect(reloaded.backbones.map((b) => b.name)).toContain('tiny-net');
});

test('--plugin resolves from the working directory and dedupes a module the config also names', async () => {
  const { path } = await project(`plugins: [./plugins/tiny-net.mjs]\n${body('unused')}`);
  const { plugins } = await loadConfigWithPlugins(path, defaultPlugins, { extra: commandLinePlugins(['./tiny-net.mjs'], fixtures) });
  expect(plugins.sources).toHaveLength(1);
  expect(plugins.backbones.filter((b) => b.name === 'tiny-net')).toHaveLength(1);
});

test('every failure names the plugin and where it was asked for', async () => {
  const fail = async (list: string, pattern: RegExp) => {
    const { path } = await project(`plugins: ${list}\n${body('unused', 'smallnet')}`);
    await expect(loadConfigWithPlugins(path, defaultPlugins)).rejects.toThrow(pattern);
  };
  await fail('["@nope/missing"]', /plugin @nope\/missing: package @nope\/missing is not installed where .*configs can import it .*\(plugins of .*run\.yaml\)/);
  await fail('[./plugins/absent.mjs]', /plugin \.\/plugins\/absent\.mjs: .*absent\.mjs does not exist \(plugins of .*run\.yaml\)/);
  await fail('[./plugins/broken.mjs]', /plugin \.\/plugins\/broken\.mjs \(plugins of .*run\.yaml, .*broken\.mjs\) failed to load: broken on purpose/);
  await fail('[./plugins/look-alike.mjs]', /plugin \.\/plugins\/look-alike\.mjs .* exports no loss or backbone made by defineLoss or defineBackbone \(its exports: lookAlike, version\)/);
  await fail('[./plugins/second-arcface.mjs]', /loss "arcface" is defined by two modules: @fr\/arcface \(built in\) and \.\/plugins\/second-arcface\.mjs \(.*second-arcface\.mjs\)/);
  await fail('[./plugins/tiny-net.mjs, ./plugins/tiny-net-again.mjs]', /backbone "tiny-net" is defined by two modules: \.\/plugins\/tiny-net\.mjs \(.*\) and \.\/plugins\/tiny-net-again\.mjs/);
  await fail('./plugins/tiny-net.mjs', /run\.yaml: plugins must be a list of module specifiers/);
  await fail('[""]', /run\.yaml: plugins must be a list of module specifiers/);
});

test('fr import of a .pth loads the plugins of its config and records them, so eval needs no --plugin', async () => {
  const out = join(await mkdtemp(join(tmpdir(), 'fr-plugins-import-')), 'run');
  const { dir, path } = await project(`plugins: [./plugins/tiny-net.mjs]\n${body(out)}`);
  const { config, plugins } = await loadConfigWithPlugins(path, defaultPlugins);
  const backend = createCpuBackend();
  const net = plugins.backbones.find((b) => b.name === 'tiny-net')!;
  const source = net.build({ backend, params: net.params.parse({ ...config.backbone }), rng: createRng(5) });
  const tensors = await Promise.all([...source.parameters, ...source.buffers].map(async ({ name, tensor }) => (
    { name, dtype: 'float32' as const, storage: (await tensor.data()) as Float32Array, shape: [...tensor.shape] })));
  const pth = join(dir, 'tiny.pth');
  await writeFile(pth, writeTorchFile(tensors));

  // Only the built-in plugins are given: the config's list brings tiny-net.
  await importCommand({ file: pth, configPath: path, out, plugins: defaultPlugins, backend });
  const checkpoint = join(out, 'checkpoint.safetensors');
  const recorded = JSON.parse(decodeSafetensors(await readFile(checkpoint), checkpoint).metadata.plugins);
  expect(recorded).toEqual([{ specifier: './plugins/tiny-net.mjs', path: realpathSync(join(fixtures, 'tiny-net.mjs')), version: '0.1.0' }]);
  const run = await loadRun(out, defaultPlugins, backend, silent);
  for (const [i, { name, tensor }] of source.parameters.entries()) {
    expect(Array.from((await run.module.parameters[i].tensor.data()) as Float32Array), name).toEqual(Array.from((await tensor.data()) as Float32Array));
  }
});
