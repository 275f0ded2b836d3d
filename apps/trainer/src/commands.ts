/** The `fr` subcommands, as functions the CLI and the tests call. */
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, DataError, decodeSafetensors, parseConfig, restoreCheckpoint, type Backend } from '@fr/core';
import { formatLossConformance, runLossConformance, type LossCaseResult } from '@fr/core/testing';
import { trainConfigSchema, type TrainConfig } from './config.js';
import { openVerificationSets } from './data.js';
import { evaluateModel, formatReport, type VerificationReport } from './evaluate.js';
import { InterruptedError } from './interrupt.js';
import { validateVerificationSets } from './run-guard.js';
import { recordedPlugins, reloadPlugins } from './plugin-loader.js';
import type { Plugins } from './plugins.js';
import { writeComparisonReport } from './report.js';
import { buildRun, CHECKPOINT_FILE, checkpointTensors, train, type TrainOptions } from './train.js';

/**
 * Reads a run folder's checkpoint: its config and the model rebuilt with the saved weights. The
 * plugins it was trained with are loaded again on top of `given` (see `reloadPlugins`); `notes`
 * gets a line when one's version changed.
 */
export async function loadRun(dir: string, given: Plugins, backend: Backend, notes: (line: string) => void = (l) => console.error(l)) {
  const path = dir.endsWith('.safetensors') ? dir : join(dir, CHECKPOINT_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new DataError(`checkpoint ${path}: cannot read (${(e as Error).message})`);
  }
  const meta = decodeSafetensors(bytes, path).metadata;
  if (!meta.config) throw new DataError(`checkpoint ${path} has no config in its metadata`);
  const plugins = await reloadPlugins(given, recordedPlugins(meta, path), path, notes);
  const stored = parseStoredConfig(meta.config, path);
  const config = parseConfig(trainConfigSchema(plugins), stored, `${path} (config)`) as TrainConfig;
  const numClasses = meta.numClasses !== undefined ? Number(meta.numClasses) : headClasses(bytes, path);
  if (!(Number.isInteger(numClasses) && numClasses > 0)) throw new DataError(`checkpoint ${path}: numClasses ${JSON.stringify(meta.numClasses)} in its metadata is not a positive integer`);
  const run = buildRun(config, plugins, backend, numClasses);
  // A shipped model may leave out the optimizer state: only training needs it.
  const optional = run.optimizer.state().map((t) => t.name);
  restoreCheckpoint(bytes, checkpointTensors(run.module, run.head, run.optimizer), { source: path, optional });
  return { config, ...run, meta, plugins };
}

/** A checkpoint's config, without `data.workers`, a key that did nothing and was removed. */
function parseStoredConfig(text: string, path: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DataError(`checkpoint ${path}: its config metadata is not JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null) throw new DataError(`checkpoint ${path}: its config metadata is not an object`);
  const config = raw as Record<string, unknown> & { data?: Record<string, unknown> };
  if (config.data && typeof config.data === 'object') {
    const { workers: _removed, ...data } = config.data;
    return { ...config, data };
  }
  return config;
}

/**
 * The number of classes of a checkpoint without `numClasses` in its metadata: the rows of its head
 * weight, summed over the shards of a sharded head (`head.<loss>.weight.shard<i>of<K>`).
 */
function headClasses(bytes: Uint8Array, path: string): number {
  const tensors = decodeSafetensors(bytes, path).tensors;
  const whole = Object.keys(tensors).find((n) => /^head\.[^.]+\.weight$/.test(n));
  if (whole) return tensors[whole].shape[0];
  const shards = Object.keys(tensors).filter((n) => /^head\.[^.]+\.weight\.shard\d+of\d+$/.test(n));
  if (shards.length === 0) throw new DataError(`checkpoint ${path} holds no head weight (head.<loss>.weight or its shards)`);
  return shards.reduce((n, name) => n + tensors[name].shape[0], 0);
}

/** `fr eval`: verification of a checkpoint on the sets of its config, or on given ones. */
export async function evalCommand(
  dir: string,
  data: TrainConfig['data']['eval'] | null,
  plugins: Plugins,
  backend: Backend,
): Promise<VerificationReport[]> {
  const run = await loadRun(dir, plugins, backend);
  const config = data ? { ...run.config, data: { ...run.config.data, eval: data } } : run.config;
  const sets = await openVerificationSets(config);
  if (sets.length === 0) throw new ConfigError('fr eval: no verification set: pass --data synthetic or --data <file.bin>');
  await validateVerificationSets(sets, run.inputShape, undefined, { decode: false });
  const results: VerificationReport[] = [];
  for (const set of sets) results.push(await evaluateModel(backend, run.module, set, run.embeddingDim));
  return results;
}

/** `--data` of fr eval: `synthetic` (the held-out synthetic identities) or a .bin file. */
export function parseDataArgument(value: string, config?: TrainConfig): TrainConfig['data']['eval'] {
  if (value === 'synthetic') {
    const train = config?.data.train;
    const base = train?.name === 'synthetic' ? { seed: train.seed, size: train.size, nuisance: train.nuisance } : {};
    return [{ name: 'synthetic', label: 'synthetic', testIdentities: 600, imagesPerIdentity: 10, pairsPerFold: 300, seed: 0, size: 32, nuisance: 1, ...base }];
  }
  if (value.endsWith('.bin')) return [{ name: 'bin', path: value }];
  throw new ConfigError(`--data ${value}: give "synthetic" or a verification .bin file`);
}

export interface CompareRow {
  loss: string;
  report: VerificationReport;
  finalLoss: number;
}

/** `fr compare`: the same backbone, data and budget with each loss. */
export async function compareCommand(
  base: TrainConfig,
  lossNames: readonly string[],
  options: Omit<TrainOptions, 'resume'>,
): Promise<{ rows: CompareRow[]; table: string; reportPath: string }> {
  const installed = options.plugins.losses.map((l) => l.name);
  const unknown = lossNames.filter((n) => !installed.includes(n));
  if (unknown.length) throw new ConfigError(`fr compare: unknown loss ${unknown.join(', ')}; installed: ${installed.join(', ')}`);
  if (base.data.eval.length === 0) throw new ConfigError('fr compare: the config needs at least one data.eval set to compare on');
  const rows: CompareRow[] = [];
  for (const name of lossNames) {
    const keep = base.loss.name === name ? base.loss : { name };
    const config = parseConfig(trainConfigSchema(options.plugins), { ...base, loss: keep, output: join(base.output, name) }, `compare ${name}`) as TrainConfig;
    const result = await train(config, options);
    if (result.interrupted) throw new InterruptedError(`fr compare: interrupted while training ${name}; its checkpoint is in ${config.output} (fr train --resume continues it)`);
    rows.push({ loss: name, report: result.evaluations.at(-1)!.results[0], finalLoss: result.finalLoss });
  }
  const fars = [1e-3, 1e-2, 1e-1];
  const header = `| loss | accuracy (%) | std | AUC | EER (%) | ${fars.map((f) => `TAR@FAR=${f.toExponential(0)} (%)`).join(' | ')} |`;
  const sep = `|${'---|'.repeat(5 + fars.length)}`;
  const lines = rows.map((r) => {
    const tar = fars.map((f) => (100 * (r.report.tarAtFar.find((t) => t.far === f)?.tar ?? NaN)).toFixed(2));
    return `| ${r.loss} | ${(100 * r.report.accuracyMean).toFixed(2)} | ${(100 * r.report.accuracyStd).toFixed(2)} | ${r.report.auc.toFixed(4)} | ${(100 * r.report.eer).toFixed(2)} | ${tar.join(' | ')} |`;
  });
  const table = [header, sep, ...lines].join('\n');
  const reportPath = join(base.output, 'compare.html');
  await writeComparisonReport(reportPath, rows.map((r) => ({ name: r.loss, r: r.report })), base);
  await writeFile(join(base.output, 'compare.md'), `${table}\n`);
  return { rows, table, reportPath };
}

/** Expands files and folders to the .json reference cases they hold. */
export async function caseFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => null);
    if (!s) throw new ConfigError(`fr conformance: ${p} does not exist`);
    if (s.isDirectory()) {
      for (const name of (await readdir(p)).sort()) if (name.endsWith('.json')) out.push(join(p, name));
    } else out.push(p);
  }
  return out;
}

/** `fr conformance`: runs reference cases of losses on a backend; a bad file fails its case only. */
export async function conformanceCommand(paths: readonly string[], plugins: Plugins, backend: Backend) {
  const results: LossCaseResult[] = [];
  const files = await caseFiles(paths);
  if (files.length === 0) throw new ConfigError(`fr conformance: no reference cases (.json files) in ${paths.join(', ')}`);
  for (const file of files) {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      results.push({ name: file, loss: '?', pass: false, error: `${file}: not valid JSON (${(e as Error).message})`, checks: {} });
      continue;
    }
    const [r] = await runLossConformance([raw], { losses: plugins.losses, backend });
    results.push({ ...r, name: `${r.name} [${file}]` });
  }
  return { results, text: formatLossConformance(results) };
}

export { formatReport };
