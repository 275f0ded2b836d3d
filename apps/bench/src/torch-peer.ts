/**
 * PyTorch on the CPU as an optional peer of `pnpm bench -- --only cpu`: `torch_peer.py` (beside this
 * file) runs one workload per process under Debian's python3 with python3-torch (OpenBLAS), and
 * prints JSON that this module checks field by field. MobileFaceNet is insightface's own
 * `get_mbf`, loaded from a checkout given by `--insightface <dir>` or `FR_INSIGHTFACE` (never
 * vendored here). Without torch or without the checkout the rows it cannot run are named on one
 * line, with the reason, and the bench goes on.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Log } from './common.js';

/** Debian's interpreter, the one python3-torch installs into (not a pyenv or venv python3). */
export const DEBIAN_PYTHON = '/usr/bin/python3';
export const INSIGHTFACE_ENV = 'FR_INSIGHTFACE';
/** The single file the MobileFaceNet workload imports from the checkout. */
export const MOBILEFACENET_FILE = 'recognition/arcface_torch/backbones/mobilefacenet.py';
const SCRIPT = fileURLToPath(new URL('./torch_peer.py', import.meta.url));

export interface StepCounts {
  warmups: number;
  steps: number;
}

export interface TorchPeerOptions {
  python: string;
  /** An insightface checkout (its root); null: the MobileFaceNet rows are not run. */
  insightface: string | null;
  /** PyTorch's threads; default: this machine's cores. */
  threads?: number;
  head?: StepCounts;
  mobilefacenet?: StepCounts;
  matmul?: StepCounts;
  /** Per workload process, ms. */
  timeoutMs?: number;
}

/** As the project reports PyTorch: head median of 20 after 3 warm-ups. */
export const TORCH_STEPS = {
  head: { warmups: 3, steps: 20 },
  mobilefacenet: { warmups: 2, steps: 5 },
  matmul: { warmups: 2, steps: 10 },
} satisfies Record<string, StepCounts>;

/**
 * The peer's options from the bench's flags and environment. A flag wins over the environment;
 * a value that is given but unusable is an error naming the flag or variable.
 */
export function torchPeerOptions(flags: { insightface?: string; torchPython?: string }, env: NodeJS.ProcessEnv): TorchPeerOptions {
  const fromFlag = flags.insightface !== undefined;
  const dir = fromFlag ? flags.insightface : env[INSIGHTFACE_ENV];
  const source = fromFlag ? '--insightface' : INSIGHTFACE_ENV;
  let insightface: string | null = null;
  if (dir !== undefined) {
    if (dir.trim() === '') throw new Error(`${source}: empty; give the root of an insightface checkout`);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${source}: "${dir}" is not a directory`);
    if (!existsSync(join(dir, MOBILEFACENET_FILE))) throw new Error(`${source}: "${dir}" has no ${MOBILEFACENET_FILE} (give the root of an insightface checkout)`);
    insightface = dir;
  }
  const python = flags.torchPython ?? DEBIAN_PYTHON;
  if (flags.torchPython !== undefined && (!existsSync(python) || !statSync(python).isFile())) {
    throw new Error(`--torch-python: "${python}" is not a file`);
  }
  return { python, insightface };
}

/**
 * The environment PyTorch runs in: OpenBLAS picks its own kernels and cache sizes (the machine's
 * overrides removed), and glibc keeps freed memory, which without these thresholds it returns and
 * maps afresh every step (the head step then takes 250-300 ms instead of about 45 ms).
 */
export function torchEnv(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_TRIM_THRESHOLD_: '100000000000' };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

export type TorchWorkload = 'head' | 'mobilefacenet' | 'matmul';

/** What can run: the workloads, or one line naming those that cannot and why. */
export interface TorchAvailability {
  workloads: TorchWorkload[];
  torchVersion: string | null;
  notRun: string | null;
}

/** Whether `python` imports torch, and which workloads the options allow. Never throws. */
export function torchAvailability(o: TorchPeerOptions): TorchAvailability {
  const probe = spawnSync(o.python, ['-c', 'import torch; print(torch.__version__)'], { env: torchEnv(process.env), encoding: 'utf8', timeout: 120_000 });
  if (probe.error || probe.status !== 0) {
    const why = probe.error
      ? `${o.python} could not be run (${(probe.error as NodeJS.ErrnoException).code ?? probe.error.message})`
      : `${o.python} has no torch (${lastLine(probe.stderr) || `exit ${probe.status}`})`;
    return {
      workloads: [], torchVersion: null,
      notRun: `PyTorch peer not run (head, MobileFaceNet, matmul rows): ${why}; install with apt-get install -y python3-torch libopenblas0-pthread`,
    };
  }
  const torchVersion = probe.stdout.trim();
  if (o.insightface === null) {
    return {
      workloads: ['head', 'matmul'], torchVersion,
      notRun: `PyTorch peer: MobileFaceNet rows not run: no insightface checkout given (--insightface <dir> or ${INSIGHTFACE_ENV})`,
    };
  }
  return { workloads: ['head', 'mobilefacenet', 'matmul'], torchVersion, notRun: null };
}

/** `git rev-parse HEAD` of the checkout, or why there is none (an exported file, say). */
export function insightfaceCommit(dir: string): string {
  const r = spawnSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'not a git checkout: record its commit beside the figures';
}

function lastLine(s: string | null | undefined): string {
  return (s ?? '').trim().split('\n').at(-1) ?? '';
}

// ---------------------------------------------------------------------------------------------
// The script's output, checked

export interface TorchEnvInfo {
  torch: string;
  python: string;
  executable: string;
  threads: number;
  blas: string | null;
  blasThreads: number | null;
  mallocMmapThreshold: string | null;
}
export interface TorchHeadResult { env: TorchEnvInfo; ms: number; loss: number }
export interface TorchBackboneResult { env: TorchEnvInfo; rows: { batch: number; ms: number; loss: number }[]; parameters: number }
export interface TorchMatmulResult { env: TorchEnvInfo; rows: { name: string; ms1: number; msN: number }[] }

type Obj = Record<string, unknown>;

class Checker {
  constructor(private readonly what: string) {}
  fail(path: string, expected: string, got: unknown): never {
    throw new Error(`${this.what}: field "${path}" ${expected} (got ${JSON.stringify(got)})`);
  }
  object(v: unknown, path: string, keys: string[]): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'is not an object', v);
    const o = v as Obj;
    for (const k of Object.keys(o)) if (!keys.includes(k)) this.fail(path ? `${path}.${k}` : k, 'is unknown', o[k]);
    for (const k of keys) if (!(k in o)) this.fail(path ? `${path}.${k}` : k, 'is missing', undefined);
    return o;
  }
  positive(o: Obj, key: string, path = key): number {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(path, 'is not a positive number', v);
    return v as number;
  }
  finite(o: Obj, key: string, path = key): number {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, 'is not a finite number', v);
    return v as number;
  }
  string(o: Obj, key: string, path = key): string {
    if (typeof o[key] !== 'string') this.fail(path, 'is not a string', o[key]);
    return o[key] as string;
  }
  orNull<T>(o: Obj, key: string, read: () => T): T | null {
    return o[key] === null ? null : read();
  }
  array(o: Obj, key: string, length: number): unknown[] {
    const v = o[key];
    if (!Array.isArray(v) || v.length !== length) this.fail(key, `is not an array of ${length}`, v);
    return v as unknown[];
  }
}

function parseTop(stdout: string, workload: TorchWorkload, keys: string[]): { c: Checker; o: Obj; env: TorchEnvInfo } {
  const c = new Checker(`PyTorch peer (${workload}) output`);
  const line = lastLine(stdout);
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new Error(`PyTorch peer (${workload}) output: not JSON: ${JSON.stringify(line.slice(0, 200))}`);
  }
  const o = c.object(json, '', ['workload', 'env', ...keys]);
  if (o.workload !== workload) c.fail('workload', `is not "${workload}"`, o.workload);
  const e = c.object(o.env, 'env', ['torch', 'python', 'executable', 'threads', 'blas', 'blasThreads', 'mallocMmapThreshold']);
  const env: TorchEnvInfo = {
    torch: c.string(e, 'torch', 'env.torch'),
    python: c.string(e, 'python', 'env.python'),
    executable: c.string(e, 'executable', 'env.executable'),
    threads: c.positive(e, 'threads', 'env.threads'),
    blas: c.orNull(e, 'blas', () => c.string(e, 'blas', 'env.blas')),
    blasThreads: c.orNull(e, 'blasThreads', () => c.positive(e, 'blasThreads', 'env.blasThreads')),
    mallocMmapThreshold: c.orNull(e, 'mallocMmapThreshold', () => c.string(e, 'mallocMmapThreshold', 'env.mallocMmapThreshold')),
  };
  return { c, o, env };
}

export function parseHeadOutput(stdout: string): TorchHeadResult {
  const { c, o, env } = parseTop(stdout, 'head', ['ms', 'loss']);
  return { env, ms: c.positive(o, 'ms'), loss: c.finite(o, 'loss') };
}

export function parseBackboneOutput(stdout: string, batches: number[]): TorchBackboneResult {
  const { c, o, env } = parseTop(stdout, 'mobilefacenet', ['rows', 'parameters']);
  const rows = c.array(o, 'rows', batches.length).map((r, i) => {
    const row = c.object(r, `rows.${i}`, ['batch', 'ms', 'loss']);
    if (row.batch !== batches[i]) c.fail(`rows.${i}.batch`, `is not ${batches[i]}`, row.batch);
    return { batch: batches[i], ms: c.positive(row, 'ms', `rows.${i}.ms`), loss: c.finite(row, 'loss', `rows.${i}.loss`) };
  });
  return { env, rows, parameters: c.positive(o, 'parameters') };
}

export function parseMatmulOutput(stdout: string, names: string[]): TorchMatmulResult {
  const { c, o, env } = parseTop(stdout, 'matmul', ['rows']);
  const rows = c.array(o, 'rows', names.length).map((r, i) => {
    const row = c.object(r, `rows.${i}`, ['name', 'ms1', 'msN']);
    if (row.name !== names[i]) c.fail(`rows.${i}.name`, `is not "${names[i]}"`, row.name);
    return { name: names[i], ms1: c.positive(row, 'ms1', `rows.${i}.ms1`), msN: c.positive(row, 'msN', `rows.${i}.msN`) };
  });
  return { env, rows };
}

// ---------------------------------------------------------------------------------------------
// Running the script

function runScript(o: TorchPeerOptions, spec: Record<string, unknown>): Promise<string> {
  const workload = spec.workload as TorchWorkload;
  return new Promise((resolve, reject) => {
    execFile(o.python, [SCRIPT, JSON.stringify(spec)], { env: torchEnv(process.env), timeout: o.timeoutMs ?? 600_000, maxBuffer: 1 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`PyTorch peer (${workload}): ${o.python} ${SCRIPT} failed (${error.killed ? 'timed out' : `exit ${error.code}`}): ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
        else resolve(stdout);
      });
  });
}

const threadsOf = (o: TorchPeerOptions) => o.threads ?? availableParallelism();

/** The ArcFace head step on x (B x D), W (C x D) and labels written as raw little-endian files into `dataDir`. */
export async function torchHead(o: TorchPeerOptions, shape: { batch: number; dim: number; classes: number; s: number; m: number }, dataDir: string): Promise<TorchHeadResult> {
  const spec = { workload: 'head', threads: threadsOf(o), ...(o.head ?? TORCH_STEPS.head), ...shape, data: dataDir };
  return parseHeadOutput(await runScript(o, spec));
}

/** insightface's MobileFaceNet training step at each batch (the checkout must be given). */
export async function torchMobileFaceNet(o: TorchPeerOptions, batches: number[], size: number, embedding: number): Promise<TorchBackboneResult> {
  if (o.insightface === null) throw new Error('PyTorch peer (mobilefacenet): no insightface checkout');
  const spec = { workload: 'mobilefacenet', threads: threadsOf(o), ...(o.mobilefacenet ?? TORCH_STEPS.mobilefacenet), batches, size, embedding, insightface: o.insightface };
  return parseBackboneOutput(await runScript(o, spec), batches);
}

export async function torchMatmul(o: TorchPeerOptions, shapes: { name: string; m: number; n: number; k: number; transB: boolean }[]): Promise<TorchMatmulResult> {
  const spec = { workload: 'matmul', threads: threadsOf(o), ...(o.matmul ?? TORCH_STEPS.matmul), shapes };
  return parseMatmulOutput(await runScript(o, spec), shapes.map((s) => s.name));
}

export function describeTorchEnv(e: TorchEnvInfo): string {
  return `PyTorch ${e.torch} (Python ${e.python}, ${e.executable}), ${e.threads} threads, BLAS ${e.blas ?? 'not OpenBLAS'}` +
    `${e.blasThreads === null ? '' : ` at ${e.blasThreads} threads`}, MALLOC_MMAP_THRESHOLD_=${e.mallocMmapThreshold ?? 'unset'}`;
}

/** Prints the availability line(s) at the start of the cpu bench. */
export function logAvailability(a: TorchAvailability, o: TorchPeerOptions, log: Log): void {
  if (a.torchVersion !== null) log(`PyTorch peer: torch ${a.torchVersion} from ${o.python}, ${threadsOf(o)} threads`);
  if (o.insightface !== null && a.workloads.includes('mobilefacenet')) log(`  insightface checkout ${o.insightface} (commit: ${insightfaceCommit(o.insightface)})`);
  if (a.notRun !== null) log(a.notRun);
}
