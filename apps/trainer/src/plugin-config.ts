/**
 * A config file together with the plugins it needs: the modules of its `plugins:` list (resolved
 * from the file's folder), those of `--plugin` (resolved from the working directory) and, for
 * `--resume`, those the checkpoint in its output folder was trained with.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, decodeSafetensors, parseConfig } from '@fr/core';
import { DEFAULT_OUTPUT, readConfigFile, trainConfigSchema, type TrainConfig } from './config.js';
import { loadPlugins, recordedPlugins, reloadPlugins, type PluginRequest } from './plugin-loader.js';
import type { Plugins } from './plugins.js';
import { CHECKPOINT_FILE } from './train.js';

/** `--plugin` values as requests: resolved from `cwd`, as a path typed there. */
export function commandLinePlugins(specifiers: readonly string[] = [], cwd = process.cwd()): PluginRequest[] {
  return specifiers.map((specifier) => ({ specifier, fromDir: cwd, origin: '--plugin' }));
}

export interface LoadedConfig {
  config: TrainConfig;
  plugins: Plugins;
}

/** The `plugins:` entry of a raw config, checked: a list of module specifiers. */
function configPluginList(raw: unknown, path: string): string[] {
  const list = (raw as { plugins?: unknown } | null)?.plugins;
  if (list === undefined) return [];
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new ConfigError(`${path}: plugins must be a list of module specifiers (package names or relative paths), got ${JSON.stringify(list)}`);
  }
  return list as string[];
}

/** The plugins a checkpoint records; none when it does not exist (train reports a missing one). */
async function checkpointPluginSources(checkpoint: string) {
  const bytes = await readFile(checkpoint).catch(() => null);
  if (!bytes) return [];
  return recordedPlugins(decodeSafetensors(bytes, checkpoint).metadata, checkpoint);
}

/** Reads a config file, loads the plugins it and the command line name, and validates it against them. */
export async function loadConfigWithPlugins(
  path: string,
  base: Plugins,
  options: { extra?: readonly PluginRequest[]; overrides?: Record<string, unknown>; resume?: boolean; notes?: (line: string) => void } = {},
): Promise<LoadedConfig> {
  const raw = await readConfigFile(path);
  const overrides = options.overrides ?? {};
  const fromDir = dirname(resolve(path));
  const requests: PluginRequest[] = [
    ...configPluginList(raw, path).map((specifier) => ({ specifier, fromDir, origin: `plugins of ${path}` })),
    ...(options.extra ?? []),
  ];
  let plugins = await loadPlugins(base, requests);
  if (options.resume) {
    const output = String(overrides.output ?? (raw as { output?: unknown })?.output ?? DEFAULT_OUTPUT);
    const checkpoint = join(output, CHECKPOINT_FILE);
    plugins = await reloadPlugins(plugins, await checkpointPluginSources(checkpoint), checkpoint, options.notes);
  }
  const config = parseConfig(trainConfigSchema(plugins), { ...(raw as object), ...overrides }, path) as TrainConfig;
  return { config, plugins };
}
