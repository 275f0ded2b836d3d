/**
 * What keeps a run from being lost: a fresh run never writes over an old one unasked, `--resume`
 * continues only from a checkpoint with its training state and the same config, the resumed log
 * has no step twice, and verification sets are checked in full before the first step.
 */
import { appendFile, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, DataError, decodeSafetensors, FormatError } from '@fr/core';
import { writeFileAtomic } from '@fr/core/node';
import type { TrainConfig } from './config.js';
import type { VerificationSet } from './data.js';

const RUN_FILES = ['checkpoint.safetensors', 'log.jsonl'];

/**
 * Refuses a fresh run into a folder that holds one (a checkpoint, or a log with lines), naming it;
 * `--resume` continues it, `--overwrite` replaces it.
 */
export async function checkOutputFolder(out: string, o: { resume?: boolean; overwrite?: boolean }): Promise<{ replacing: boolean }> {
  if (o.resume) return { replacing: false };
  const held: string[] = [];
  for (const name of RUN_FILES) {
    const s = await stat(join(out, name)).catch(() => null);
    if (s && s.size > 0) held.push(name);
  }
  if (held.length === 0) return { replacing: false };
  if (o.overwrite) return { replacing: true };
  throw new ConfigError(
    `output folder ${out} holds a run (${held.join(', ')}): continue it with --resume, replace it with --overwrite, or set output to another folder`,
  );
}

/**
 * Removes the temporary files of checkpoint and log writes that a killed process left behind
 * (`checkpoint.safetensors.tmp-<pid>-<time>`; the files they were to replace are whole), and the
 * log of a replacing run that never reached its first checkpoint.
 */
export async function removeStaleTemporaries(out: string): Promise<string[]> {
  const names = await readdir(out).catch(() => [] as string[]);
  // log.jsonl.new: the log of an --overwrite run that ended before its first checkpoint.
  const stale = names.filter((n) => RUN_FILES.some((f) => n.startsWith(`${f}.tmp-`)) || n === 'log.jsonl.new');
  for (const n of stale) await rm(join(out, n), { force: true });
  return stale;
}

/** Appends to a run's log; a failure (ENOSPC, EROFS) names the log and the cause. */
export async function appendLog(path: string, text: string): Promise<void> {
  await appendFile(path, text).catch((e: NodeJS.ErrnoException) => {
    throw new FormatError(`cannot write the log ${path}: ${e.code ?? 'error'} (${e.message})`, { cause: e });
  });
}

/** Starts a run's log; a failure names the log and the cause. */
export async function writeLog(path: string, text: string): Promise<void> {
  await writeFile(path, text).catch((e: NodeJS.ErrnoException) => {
    throw new FormatError(`cannot write the log ${path}: ${e.code ?? 'error'} (${e.message})`, { cause: e });
  });
}

/** The training state a checkpoint's metadata must hold for `--resume`. */
export interface ResumeState {
  step: number;
  optimizerSteps: number;
  config: Partial<TrainConfig>;
}

/** Config fields that change what training computes; `--resume` refuses a change in any of them. */
const RESUME_FIELDS = [
  'seed', 'batchSize', 'optimizer', 'schedule', 'data.train', 'data.flip', 'loss', 'backbone', 'head',
  'activationPrecision', 'lossScale', 'clipGradNorm', 'onNonFinite',
] as const;

/** Reads and checks the training metadata of a checkpoint (`path` names it in errors). */
export function resumeState(bytes: Uint8Array, path: string): ResumeState {
  const meta = decodeSafetensors(bytes, path).metadata;
  const missing = ['step', 'optimizerSteps', 'config'].filter((k) => meta[k] === undefined);
  if (missing.length) {
    throw new FormatError(`--resume: ${path} has no ${missing.join(', ')} in its metadata: it holds a model, not a training state (fr eval, embed and export read it)`);
  }
  const step = Number(meta.step);
  const optimizerSteps = Number(meta.optimizerSteps);
  if (!Number.isSafeInteger(step) || step < 0) throw new FormatError(`--resume: ${path}: metadata step ${JSON.stringify(meta.step)} is not a non-negative integer`);
  if (!Number.isSafeInteger(optimizerSteps) || optimizerSteps < 0) {
    throw new FormatError(`--resume: ${path}: metadata optimizerSteps ${JSON.stringify(meta.optimizerSteps)} is not a non-negative integer`);
  }
  let config: unknown;
  try {
    config = JSON.parse(meta.config);
  } catch (e) {
    throw new FormatError(`--resume: ${path}: metadata config is not JSON (${(e as Error).message})`);
  }
  if (typeof config !== 'object' || config === null) throw new FormatError(`--resume: ${path}: metadata config is not an object`);
  for (const key of ['losses', 'evaluations']) {
    if (meta[key] === undefined) continue;
    let value: unknown;
    try {
      value = JSON.parse(meta[key]);
    } catch {
      value = null;
    }
    if (!Array.isArray(value)) throw new FormatError(`--resume: ${path}: metadata ${key} is not a JSON list`);
  }
  return { step, optimizerSteps, config: config as Partial<TrainConfig> };
}

/** `a.b: old -> new` for every leaf that differs between the two configs in the fields resume keeps. */
export function configChanges(written: Partial<TrainConfig>, current: TrainConfig): string[] {
  const changes: string[] = [];
  for (const field of RESUME_FIELDS) {
    const path = field.split('.');
    const get = (o: unknown) => path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
    diff(field, get(written), get(current), changes);
  }
  return changes;
}

function diff(path: string, a: unknown, b: unknown, out: string[]): void {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(a) && isObject(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) diff(`${path}.${k}`, a[k], b[k], out);
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${path}: ${JSON.stringify(a) ?? '(none)'} -> ${JSON.stringify(b) ?? '(none)'}`);
}

/** Refuses to resume with a config that trains differently, unless allowed; lists the changes. */
export function checkResumeConfig(path: string, written: Partial<TrainConfig>, current: TrainConfig, allowChange: boolean, print: (line: string) => void): void {
  const changes = configChanges(written, current);
  if (changes.length === 0) return;
  if (!allowChange) {
    throw new ConfigError(`--resume: the config differs from the one ${path} was trained with:\n${changes.map((c) => `  - ${c}`).join('\n')}\nresume with the same config, or pass --allow-config-change`);
  }
  print(`--allow-config-change: resuming with ${changes.length} change(s): ${changes.join('; ')}`);
}

/**
 * Drops the lines of a log past the step a run resumes from (written after its last checkpoint),
 * so the resumed log has no step twice. Lines without a step are kept.
 */
export async function trimLog(logPath: string, step: number): Promise<void> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const kept = lines.filter((line) => {
    try {
      const entry = JSON.parse(line) as { step?: unknown };
      return !(typeof entry.step === 'number' && entry.step > step);
    } catch {
      return true;
    }
  });
  if (kept.length !== lines.length) await writeFileAtomic(logPath, kept.length ? `${kept.join('\n')}\n` : '');
}

/** The fewest pairs of each kind a verification set needs for a meaningful 10-fold accuracy. */
export const MIN_PAIRS = 10;

/**
 * Checks verification sets before training: at least MIN_PAIRS pairs of both kinds, and every
 * image of a file decodes to the backbone's input size. An error names the set and the image.
 */
export async function validateVerificationSets(
  sets: readonly VerificationSet[],
  inputShape: readonly number[],
  between?: () => Promise<void>,
  o: { decode?: boolean } = {},
): Promise<void> {
  const [, h, w] = inputShape;
  for (const set of sets) {
    const same = set.issame.filter(Boolean).length;
    const different = set.issame.length - same;
    if (set.issame.length < MIN_PAIRS) throw new DataError(`verification set ${set.label}: ${set.issame.length} pairs; at least ${MIN_PAIRS} are needed`);
    if (same === 0 || different === 0) throw new DataError(`verification set ${set.label}: ${same} same and ${different} different pairs; both kinds are needed`);
    if (set.shape[1] !== h || set.shape[2] !== w) {
      throw new DataError(`verification set ${set.label}: images are ${set.shape[2]}x${set.shape[1]}, the backbone takes ${w}x${h}`);
    }
    // Generated images have the set's shape by construction; `decode: false` leaves the check of
    // each image to the embedding (fr eval, which decodes every image once anyway).
    if (!set.decodedFrom || o.decode === false) continue;
    for (let i = 0; i < set.length; i++) {
      const image = await set.image(i);
      if (image.height !== h || image.width !== w) {
        throw new DataError(`verification set ${set.label} (${set.decodedFrom}): image ${i} is ${image.width}x${image.height}, the backbone takes ${w}x${h}`);
      }
      if (between && i % 256 === 255) await between();
    }
  }
}
