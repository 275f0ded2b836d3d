/**
 * Plugins named by a config's `plugins:` list or by `--plugin`: module specifiers (package names or
 * relative paths) resolved from a directory as Node resolves an import written there, imported,
 * and searched for the losses and backbones `defineLoss` and `defineBackbone` made. They join the
 * built-in ones; a name defined twice is an error naming both modules.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, pluginKind, type Backbone, type Loss } from '@fr/core';
import { builtinOrigin, type Plugins } from './plugins.js';

/** A plugin module as a checkpoint records it, so `fr eval` and `--resume` can load it again. */
export interface PluginSource {
  /** As written in the config or on the command line. */
  specifier: string;
  /** The file it resolved to. */
  path: string;
  /** The version of the package that holds the file; null for a file outside any package. */
  version: string | null;
}

/** A request to load a plugin: the specifier and where it was written. */
export interface PluginRequest {
  specifier: string;
  /** Directory the specifier is resolved from (the config file's, or the working directory for --plugin). */
  fromDir: string;
  /** Where the request comes from, for messages: "config runs/a.yaml" or "--plugin". */
  origin: string;
}

export interface LoadedPlugin {
  source: PluginSource;
  losses: Loss<any>[];
  backbones: Backbone<any>[];
}

/** Conditions of an ESM import in Node, plus those the process was started with (`--conditions`). */
function importConditions(): Set<string> {
  const conditions = new Set(['import', 'node', 'default', 'module-sync']);
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  args.forEach((arg, i) => {
    const m = /^(?:--conditions|-C)(?:=(.+))?$/.exec(arg);
    if (m) {
      const value = m[1] ?? args[i + 1];
      if (value) conditions.add(value);
    }
  });
  return conditions;
}

/** The target of a conditional export value, taking the first matching condition in key order. */
function conditionalTarget(value: unknown, conditions: Set<string>): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = conditionalTarget(v, conditions);
      if (t !== null) return t;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (!conditions.has(key)) continue;
      const t = conditionalTarget(v, conditions);
      if (t !== null) return t;
    }
  }
  return null;
}

/** The file of `subpath` ("." or "./x") of the package in `dir`, from its `exports` or `main`. */
function packageEntry(dir: string, subpath: string, specifier: string): string {
  const pkg = readPackageJson(join(dir, 'package.json'));
  const conditions = importConditions();
  const exports = pkg.exports as unknown;
  if (exports !== undefined) {
    const isSubpathMap = exports && typeof exports === 'object' && !Array.isArray(exports)
      && Object.keys(exports).some((k) => k.startsWith('.'));
    let target: string | null = null;
    if (isSubpathMap) {
      const map = exports as Record<string, unknown>;
      if (subpath in map) target = conditionalTarget(map[subpath], conditions);
      else {
        for (const [key, v] of Object.entries(map)) {
          const star = key.indexOf('*');
          if (star < 0) continue;
          const [head, tail] = [key.slice(0, star), key.slice(star + 1)];
          if (subpath.startsWith(head) && subpath.endsWith(tail) && subpath.length >= key.length - 1) {
            const t = conditionalTarget(v, conditions);
            if (t !== null) target = t.replaceAll('*', subpath.slice(head.length, subpath.length - tail.length));
            break;
          }
        }
      }
    } else if (subpath === '.') target = conditionalTarget(exports, conditions);
    if (target === null) {
      throw new ConfigError(`plugin ${specifier}: ${join(dir, 'package.json')} exports no "${subpath}" for an import (conditions ${[...conditions].join(', ')})`);
    }
    return resolve(dir, target);
  }
  if (subpath !== '.') return resolve(dir, subpath);
  const main = typeof pkg.main === 'string' ? pkg.main : 'index.js';
  return resolve(dir, main);
}

function readPackageJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

/** The version of the package holding `file` (the nearest package.json with a name), or null. */
function packageVersion(file: string): string | null {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const pkg = readPackageJson(p);
      if (typeof pkg.name === 'string') return typeof pkg.version === 'string' ? pkg.version : null;
    }
    if (dirname(dir) === dir) return null;
  }
}

/**
 * The file `specifier` names when imported from a module in `fromDir`: a relative or absolute path
 * (a file, or a package directory), or a package name looked up in the node_modules directories
 * Node searches from there, with its `exports` read under the conditions of an import.
 */
export function resolvePlugin(specifier: string, fromDir: string): string {
  const local = specifier.startsWith('file:') ? fileURLToPath(specifier)
    : specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..' || isAbsolute(specifier)
      ? resolve(fromDir, specifier) : null;
  let file: string;
  if (local !== null) {
    const s = statSync(local, { throwIfNoEntry: false });
    if (!s) throw new ConfigError(`plugin ${specifier}: ${local} does not exist`);
    file = s.isDirectory() ? packageEntry(local, '.', specifier) : local;
  } else {
    const m = /^((?:@[^/]+\/)?[^/]+)(\/.*)?$/.exec(specifier);
    if (!m || specifier.startsWith('@') && !m[1].includes('/')) throw new ConfigError(`plugin ${specifier}: not a package name or a relative path`);
    const [, name, rest] = m;
    const search = createRequire(join(fromDir, 'fr-plugin-resolver.js')).resolve.paths(name) ?? [];
    const dir = search.map((d) => join(d, name)).find((d) => existsSync(join(d, 'package.json')));
    if (!dir) {
      throw new ConfigError(`plugin ${specifier}: package ${name} is not installed where ${fromDir} can import it (searched ${search.slice(0, 3).join(', ')}${search.length > 3 ? ', ...' : ''})`);
    }
    file = packageEntry(dir, rest ? `.${rest}` : '.', specifier);
  }
  if (!existsSync(file)) throw new ConfigError(`plugin ${specifier}: it resolves to ${file}, which does not exist`);
  return realpathSync(file);
}

/** Imports a plugin file and collects the losses and backbones made by defineLoss and defineBackbone. */
export async function importPlugin(source: PluginSource, origin: string): Promise<LoadedPlugin> {
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(source.path).href)) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`plugin ${source.specifier} (${origin}, ${source.path}) failed to load: ${(e as Error)?.message ?? String(e)}`);
  }
  const losses: Loss<any>[] = [];
  const backbones: Backbone<any>[] = [];
  for (const value of Object.values(namespace)) {
    const kind = pluginKind(value);
    // The same object exported twice (as default and by name) is one plugin.
    if (kind === 'loss' && !losses.includes(value as Loss<any>)) losses.push(value as Loss<any>);
    if (kind === 'backbone' && !backbones.includes(value as Backbone<any>)) backbones.push(value as Backbone<any>);
  }
  if (losses.length + backbones.length === 0) {
    const names = Object.keys(namespace);
    throw new ConfigError(`plugin ${source.specifier} (${origin}, ${source.path}) exports no loss or backbone made by defineLoss or defineBackbone (its exports: ${names.length ? names.join(', ') : 'none'})`);
  }
  return { source, losses, backbones };
}

/** Resolves and imports one plugin request. */
export async function loadPlugin(request: PluginRequest): Promise<LoadedPlugin> {
  let path: string;
  try {
    path = resolvePlugin(request.specifier, request.fromDir);
  } catch (e) {
    throw new ConfigError(`${(e as Error).message} (${request.origin})`);
  }
  return importPlugin({ specifier: request.specifier, path, version: packageVersion(path) }, request.origin);
}

/**
 * The plugins of `base` and of the loaded modules together. A module loaded twice (by the config
 * and by --plugin, or by a checkpoint) counts once; two modules defining one name is an error.
 */
export function combinePlugins(base: Plugins, loaded: readonly LoadedPlugin[]): Plugins {
  const sources: PluginSource[] = [...(base.sources ?? [])];
  const losses = [...base.losses];
  const backbones = [...base.backbones];
  const originOf = new Map<object, string>();
  const describe = (p: object) => originOf.get(p) ?? builtinOrigin(p);
  for (const module of loaded) {
    if (sources.some((s) => s.path === module.source.path)) continue;
    sources.push(module.source);
    const from = `${module.source.specifier} (${module.source.path})`;
    for (const [kind, list, added] of [['loss', losses, module.losses], ['backbone', backbones, module.backbones]] as const) {
      for (const plugin of added as readonly { name: string }[]) {
        const clash = (list as readonly { name: string }[]).find((p) => p.name === plugin.name);
        if (clash) throw new ConfigError(`${kind} "${plugin.name}" is defined by two modules: ${describe(clash)} and ${from}; remove one of them from the plugins`);
        (list as { name: string }[]).push(plugin);
        originOf.set(plugin, from);
      }
    }
  }
  return { losses, backbones, sources };
}

/** Loads the requested plugins in order and adds them to `base`. */
export async function loadPlugins(base: Plugins, requests: readonly PluginRequest[]): Promise<Plugins> {
  const loaded: LoadedPlugin[] = [];
  for (const r of requests) loaded.push(await loadPlugin(r));
  return combinePlugins(base, loaded);
}

/** The plugins a checkpoint's metadata records (`plugins`: a JSON list of sources), validated. */
export function recordedPlugins(metadata: Record<string, string>, checkpoint: string): PluginSource[] {
  if (metadata.plugins === undefined) return [];
  let list: unknown;
  try {
    list = JSON.parse(metadata.plugins);
  } catch (e) {
    throw new ConfigError(`checkpoint ${checkpoint}: its plugins metadata is not JSON (${(e as Error).message})`);
  }
  const ok = Array.isArray(list) && list.every((s) => s && typeof s.specifier === 'string' && typeof s.path === 'string'
    && (s.version === null || typeof s.version === 'string'));
  if (!ok) throw new ConfigError(`checkpoint ${checkpoint}: its plugins metadata is not a list of { specifier, path, version }`);
  return list as PluginSource[];
}

/**
 * Loads the plugins a checkpoint was trained with again: from the recorded file, or, when that file
 * is gone, by resolving the specifier from the checkpoint's directory. A plugin found nowhere is an
 * error naming it. `notes` gets a line when a package's version differs from the recorded one.
 */
export async function reloadPlugins(base: Plugins, recorded: readonly PluginSource[], checkpoint: string, notes: (line: string) => void = () => {}): Promise<Plugins> {
  const loaded: LoadedPlugin[] = [];
  const origin = `recorded in ${checkpoint}`;
  for (const r of recorded) {
    // Already loaded (by --plugin, perhaps from a new place): that copy serves.
    if ((base.sources ?? []).some((s) => s.path === r.path || s.specifier === r.specifier)) continue;
    let path = r.path;
    if (!existsSync(path)) {
      try {
        path = resolvePlugin(r.specifier, dirname(resolve(checkpoint)));
      } catch (e) {
        throw new ConfigError(`plugin ${r.specifier} (${origin}) cannot be found: ${r.path} is gone and ${(e as Error).message}; install it or pass --plugin with its new place`);
      }
    }
    const version = packageVersion(path);
    if (version !== r.version) notes(`plugin ${r.specifier}: trained with version ${r.version ?? '(none)'}, loading ${version ?? '(none)'} from ${path}`);
    loaded.push(await importPlugin({ specifier: r.specifier, path, version }, origin));
  }
  return combinePlugins(base, loaded);
}
