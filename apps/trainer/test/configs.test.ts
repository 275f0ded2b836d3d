/** Configs: unknown keys at every level, duplicate keys, plugin parameter typos. */
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { describe, expect, test } from 'vitest';
import { ConfigError, parseLossParams } from '@fr/core';
import { arcface } from '@fr/arcface';
import { sphereface } from '@fr/sphereface';
import { loadConfig } from '../src/index.js';
import { plugins, tmp } from './helpers.js';

const BASE = 'backbone: { name: smallnet }\nloss: { name: arcface }\nsteps: 2\n';

async function configError(text: string, ext = 'yaml'): Promise<string> {
  const path = join(await tmp(), `config.${ext}`);
  await writeFile(path, text);
  const e = await loadConfig(path, plugins).then(() => null, (err: Error) => err);
  expect(e).toBeInstanceOf(ConfigError);
  return (e as Error).message;
}

describe('unknown keys are errors at every level', () => {
  test('top level, data, data.train, data.eval, head, optimizer', async () => {
    expect(await configError(`data: { train: { name: synthetic } }\n${BASE}stpes: 3\n`)).toMatch(/\(root\): Unrecognized key: "stpes"/);
    expect(await configError(`data: { train: { name: synthetic }, shuffle: true }\n${BASE}`)).toMatch(/data: Unrecognized key: "shuffle"/);
    expect(await configError(`data: { train: { name: synthetic, identites: 5 } }\n${BASE}`)).toMatch(/data\.train: Unrecognized key: "identites"/);
    expect(await configError(`data: { train: { name: synthetic }, eval: [{ name: bin, path: x.bin, lable: a }] }\n${BASE}`)).toMatch(/data\.eval\.0: Unrecognized key: "lable"/);
    expect(await configError(`data: { train: { name: synthetic } }\n${BASE}head: { sampleRatio: 0.5 }\n`)).toMatch(/head: Unrecognized key: "sampleRatio"/);
    expect(await configError(`data: { train: { name: synthetic } }\n${BASE}optimizer: { name: sgd, momentun: 0.8 }\n`)).toMatch(/optimizer: Unrecognized key: "momentun"/);
  });

  test('data.workers, a key that did nothing, is gone', async () => {
    expect(await configError(`data: { train: { name: synthetic }, workers: 4 }\n${BASE}`)).toMatch(/data: Unrecognized key: "workers"/);
  });

  test('a loss parameter typo names the key and lists the valid ones', async () => {
    const message = await configError('data: { train: { name: synthetic } }\nbackbone: { name: smallnet }\nloss: { name: arcface, margin: 0.3 }\nsteps: 2\n');
    expect(message).toMatch(/loss\.margin: unknown parameter of loss arcface; valid: name, s, m/);
  });

  test('a backbone parameter typo, and a parameter of the other variant of a union', async () => {
    expect(await configError('data: { train: { name: synthetic } }\nbackbone: { name: smallnet, widht: 8 }\nloss: { name: arcface }\nsteps: 2\n'))
      .toMatch(/backbone\.widht: unknown parameter of backbone smallnet; valid: name, /);
    // `base` belongs to the A-Softmax variant of SphereFace, not to opensphere's (the default).
    expect(await configError('data: { train: { name: synthetic } }\nbackbone: { name: smallnet }\nloss: { name: sphereface, base: 100 }\nsteps: 2\n'))
      .toMatch(/loss\.base: unknown parameter of loss sphereface; valid: name, variant, s, m$/m);
  });

  test('parseLossParams refuses an unknown parameter too', () => {
    expect(() => parseLossParams(arcface, { margin: 0.3 })).toThrow(/arcface params: unknown parameter margin; valid: s, m/);
    expect(parseLossParams(sphereface, { variant: 'a-softmax', base: 100 })).toMatchObject({ variant: 'a-softmax', base: 100 });
  });
});

describe('duplicate keys', () => {
  test('in YAML', async () => {
    expect(await configError(`data: { train: { name: synthetic } }\n${BASE}steps: 3\n`)).toMatch(/config\.yaml has a duplicate key "steps": Map keys must be unique at line 5/);
  });
  test('in JSON, where JSON.parse would keep the last one', async () => {
    const json = '{"data": {"train": {"name": "synthetic"}}, "backbone": {"name": "smallnet"}, "loss": {"name": "arcface", "m": 0.5, "m": 0.2}, "steps": 2}';
    expect(await configError(json, 'json')).toMatch(/config\.json has a duplicate key "m": Map keys must be unique at line 1, column \d+/);
  });
  test('an empty config or a list is refused as such', async () => {
    expect(await configError('')).toMatch(/config\.yaml is empty/);
    expect(await configError('- a\n- b\n')).toMatch(/is not a mapping of keys to values/);
  });
});
