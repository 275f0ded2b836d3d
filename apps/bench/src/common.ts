/**
 * Shared pieces of the benchmarks: step timing with repetitions chosen from a time budget, the two
 * TensorFlow.js backends on the same device as ours, per-kernel accounting (traffic and memory) on
 * both sides, and table printing.
 */
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Backend, KernelTable } from '@fr/core';
import { createNodeWebGpuBackend, nodeGpu, type WebGpuBackend } from '@fr/backend-webgpu/node';

/** cpu: our TypeScript backend against tfjs-backend-cpu; wasm: ours against tfjs-backend-wasm. */
export type Device = 'cpu' | 'webgpu' | 'wasm';
export type Tf = typeof import('@tensorflow/tfjs-core');

export type Log = (line: string) => void;

// ---------------------------------------------------------------------------------------------
// Timing

export interface Timing {
  /** Median milliseconds per step over the timed repetitions. */
  ms: number;
  /** Steps timed (after the warm-up steps). */
  reps: number;
  /** Milliseconds of the first warm-up step (includes shader compilation on WebGPU). */
  warmupMs: number;
}

export interface RepPolicy {
  /** Time allowed for the timed steps of one side of one configuration, in ms. */
  budgetMs: number;
  minReps: number;
  maxReps: number;
  /** Warm-up: steps until this many ms have passed (default WARMUP_MS; 0: one step). */
  warmupMs?: number;
}

/** Repetitions that fit the budget given the warm-up step's duration. */
export function repsFor(warmupMs: number, p: RepPolicy): number {
  return Math.max(p.minReps, Math.min(p.maxReps, Math.floor(p.budgetMs / Math.max(warmupMs, 1e-3))));
}

/**
 * Default warm-up: steps until this much time has passed (at most WARMUP_STEPS). Short steps need many:
 * the engine compiles hot code again, optimised, after some calls (V8 does so for JS and for
 * WebAssembly, in each worker thread apart), and one call of a 1 ms kernel leaves it half done.
 * The step cap is high enough that a sub-millisecond kernel gets the whole time too: at 30 steps a
 * 256^3 product on two threads was warmed up for 25 ms, and the first row of the CPU bench gave
 * 1.49-1.74x where the same product later in the same process gave 1.71-1.99x.
 */
const WARMUP_MS = 300;
const WARMUP_STEPS = 1000;

/** Warm-up steps (see WARMUP_MS): the first step's duration and the last one's. */
async function warmUp(step: () => Promise<void>, policy: RepPolicy): Promise<{ firstMs: number; lastMs: number }> {
  const start = performance.now();
  let t0 = start;
  await step();
  const firstMs = performance.now() - t0;
  let lastMs = firstMs;
  for (let i = 1; i < WARMUP_STEPS && performance.now() - start < (policy.warmupMs ?? WARMUP_MS); i++) {
    t0 = performance.now();
    await step();
    lastMs = performance.now() - t0;
  }
  return { firstMs, lastMs };
}

function median(ts: number[]): number {
  const s = [...ts].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Times `step` (which must wait for its own device work): warm-up calls (the first one's duration
 * is reported, the last one's picks the number of timed calls under the policy), then the median
 * of the timed calls.
 */
export async function timeSteps(step: () => Promise<void>, policy: RepPolicy): Promise<Timing> {
  return (await timeStepsInTurn([step], policy))[0];
}

/**
 * Times several steps taking turns, one call of each per round, after each one's warm-up: their
 * ratios then hold while the machine's speed drifts (on a shared virtual machine it moves by a
 * quarter within minutes), which timing them one after another would fold into the ratio.
 */
export async function timeStepsInTurn(steps: (() => Promise<void>)[], policy: RepPolicy): Promise<Timing[]> {
  const warm: { firstMs: number; lastMs: number }[] = [];
  for (const step of steps) warm.push(await warmUp(step, policy));
  const reps = repsFor(warm.reduce((sum, w) => sum + w.lastMs, 0), policy);
  const ts: number[][] = steps.map(() => []);
  for (let i = 0; i < reps; i++) {
    for (let j = 0; j < steps.length; j++) {
      const t0 = performance.now();
      await steps[j]();
      ts[j].push(performance.now() - t0);
    }
  }
  return warm.map((w, j) => ({ ms: reps === 0 ? w.firstMs : median(ts[j]), reps, warmupMs: w.firstMs }));
}

// ---------------------------------------------------------------------------------------------
// Backends

/** Installs navigator.gpu from the same Dawn instance our backend uses, so tfjs sees the same adapter. */
function installNavigatorGpu(): void {
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
  if (nav?.gpu) return;
  Object.defineProperty(globalThis, 'navigator', { value: { ...(nav ?? {}), gpu: nodeGpu() }, configurable: true, writable: true });
}

let gradientsRegistered = false;

/**
 * tfjs-core's Node bundle registers no gradients (the @tensorflow/tfjs bundle imports
 * `dist/register_all_gradients`), and that file is ES modules without file extensions, which Node
 * cannot load. esbuild bundles it once into a temporary file. The copy of tfjs-core internals it
 * carries shares the engine and the gradient registry with the Node bundle: tfjs keeps them on a
 * global namespace, and its Tensor class checks instances by shape, for exactly this case.
 */
async function registerTfjsGradients(): Promise<void> {
  if (gradientsRegistered) return;
  const { build } = await import('esbuild');
  const require = createRequire(import.meta.url);
  const entry = join(dirname(require.resolve('@tensorflow/tfjs-core/package.json')), 'dist/register_all_gradients.js');
  const outfile = join(mkdtempSync(join(tmpdir(), 'fr-bench-')), 'tfjs-gradients.mjs');
  await build({ entryPoints: [entry], bundle: true, format: 'esm', platform: 'node', outfile, logLevel: 'error' });
  await import(pathToFileURL(outfile).href);
  gradientsRegistered = true;
}

/** TensorFlow.js with the given backend active (both backends are registered once). */
export async function tfjs(device: Device): Promise<Tf> {
  installNavigatorGpu();
  const tf = await import('@tensorflow/tfjs-core');
  await registerTfjsGradients();
  await import('@tensorflow/tfjs-backend-cpu');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (device === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (tf.getBackend() !== device) {
    if (!(await tf.setBackend(device))) throw new Error(`tfjs: backend ${device} failed to initialise`);
  }
  await tf.ready();
  return tf;
}

export async function ourBackend(device: Device): Promise<Backend> {
  if (device === 'cpu') {
    const { createCpuBackend } = await import('@fr/backend-cpu');
    return createCpuBackend({ maxBufferSize: 2 ** 32 });
  }
  // Every core (the benches dispose what they open, so each call starts its own threads).
  if (device === 'wasm') return wasmBackendWith(undefined);
  return createNodeWebGpuBackend();
}

/** A wasm backend at `threads` threads (undefined: the available cores). */
export async function wasmBackendWith(threads: number | undefined): Promise<Backend> {
  const { createWasmBackend } = await import('@fr/backend-wasm');
  return createWasmBackend({ threads });
}

/** Live bytes on the device as our backend counts them; pooled bytes too on WebGPU. */
export function deviceBytes(backend: Backend): { live: number; pooled: number } {
  const s = backend.stats() as ReturnType<WebGpuBackend['stats']>;
  return { live: s.bytesLive, pooled: s.bytesPooled ?? 0 };
}

// ---------------------------------------------------------------------------------------------
// Per-kernel hooks

export type KernelHook = (name: string, args: unknown[]) => void;

/**
 * The backend with a kernel table that calls `hook.current` after each kernel when it is set. The
 * wrapper inherits everything else, so tensors made through it run their ops through it.
 */
export function hookedBackend(backend: Backend): { backend: Backend; hook: { current: KernelHook | null } } {
  const hook: { current: KernelHook | null } = { current: null };
  const kernels = Object.fromEntries(
    Object.entries(backend.kernels).map(([name, fn]) => [name, (...args: unknown[]) => {
      const r = (fn as (...a: unknown[]) => unknown)(...args);
      hook.current?.(name, args);
      return r;
    }]),
  ) as unknown as KernelTable<unknown>;
  const wrapped = Object.create(backend, { kernels: { value: kernels } }) as Backend;
  return { backend: wrapped, hook };
}

export interface Traffic {
  /** Bytes read by the kernels, each input counted once per kernel. */
  read: number;
  /** Bytes written by the kernels, each output counted once per kernel. */
  written: number;
  kernels: number;
  /** Kernels the model below has no rule for (counted as 0 bytes). */
  uncounted: string[];
}

export const emptyTraffic = (): Traffic => ({ read: 0, written: 0, kernels: 0, uncounted: [] });

/**
 * Compulsory traffic of one of our kernels, in elements: each input read once and each output
 * written once, as its arguments say (tiles re-read from cache are not counted). Only the kernels
 * a cosine-margin head and the MLP example use have rules; the others land in `uncounted`.
 */
export function ourKernelTraffic(name: string, a: unknown[]): { read: number; written: number } | null {
  const n = (i: number) => a[i] as number;
  switch (name) {
    case 'fill': return { read: 0, written: n(1) };
    case 'copy': return { read: n(2), written: n(2) };
    case 'matmul': {
      const p = a[3] as { m: number; n: number; k: number; beta: number };
      return { read: p.m * p.k + p.k * p.n + (p.beta !== 0 ? p.m * p.n : 0), written: p.m * p.n };
    }
    case 'unary': return { read: n(3), written: n(3) };
    case 'binary': return { read: 2 * n(4), written: n(4) };
    case 'axpby': return { read: 2 * n(3), written: n(3) };
    case 'scaleBy': return { read: n(3) + 1, written: n(3) };
    case 'affine': return { read: n(2), written: n(2) };
    case 'addRowVector': return { read: n(3) * n(4) + n(4), written: n(3) * n(4) };
    case 'reduceSum': return { read: n(2) * n(3), written: n(4) === 0 ? n(3) : n(2) };
    case 'sumSquares': return { read: n(2), written: 1 };
    case 'scatterCols': return { read: n(2) * n(5) * (a[6] ? 2 : 1), written: n(2) * n(5) };
    case 'sgdStep': {
      const p = a[3] as { n: number; momentum: number };
      return p.momentum !== 0 ? { read: 3 * p.n, written: 2 * p.n } : { read: 2 * p.n, written: p.n };
    }
    case 'l2normalizeRows': return { read: n(3) * n(4), written: n(3) * n(4) + n(3) };
    case 'l2normalizeRowsBackward': return { read: 2 * n(4) * n(5) + n(4), written: n(4) * n(5) };
    case 'marginLoss': {
      const p = a[0] as { rows: number; cols: number; rowContext: unknown; bias: unknown };
      return {
        read: p.rows * p.cols + p.rows + (p.rowContext ? p.rows : 0) + (p.bias ? 1 : 0),
        written: p.rows * p.cols + 2 * p.rows,
      };
    }
    default: return null;
  }
}

/** A hook that adds our kernels' traffic (4-byte elements) to `t`. */
export function ourTrafficHook(t: Traffic): KernelHook {
  return (name, args) => {
    t.kernels++;
    const c = ourKernelTraffic(name, args);
    if (!c) {
      if (!t.uncounted.includes(name)) t.uncounted.push(name);
      return;
    }
    t.read += 4 * c.read;
    t.written += 4 * c.written;
  };
}

interface TensorInfoLike {
  shape: number[];
  dtype: string;
}

const sizeOf = (t: TensorInfoLike | null | undefined): number => {
  if (!t || !Array.isArray(t.shape)) return 0;
  const bytes = t.dtype === 'complex64' ? 8 : t.dtype === 'bool' ? 1 : t.dtype === 'string' ? 0 : 4;
  return t.shape.reduce((p, d) => p * d, 1) * bytes;
};

/**
 * Calls `after(kernelName, readBytes, writtenBytes)` after every registered tfjs kernel until the
 * returned function is called. It wraps the engine's `runKernelFunc`, the one path every op and
 * every gradient takes; custom-gradient scopes are skipped (their inner kernels are reported).
 * Reshape is skipped: tfjs shares the data, nothing moves.
 */
export function onTfjsKernels(tf: Tf, after: (name: string, read: number, written: number) => void): () => void {
  const engine = tf.engine() as unknown as { runKernelFunc: (p: unknown) => unknown };
  const original = engine.runKernelFunc;
  engine.runKernelFunc = function (this: unknown, p: unknown) {
    const out = original.call(this, p);
    const params = p as { kernelName?: string; inputs?: Record<string, TensorInfoLike> };
    if (params.kernelName && params.kernelName !== 'Reshape') {
      let read = 0;
      for (const t of Object.values(params.inputs ?? {})) read += sizeOf(t);
      let written = 0;
      for (const t of Array.isArray(out) ? out : [out]) written += sizeOf(t as TensorInfoLike);
      after(params.kernelName, read, written);
    }
    return out;
  };
  return () => {
    engine.runKernelFunc = original;
  };
}

// ---------------------------------------------------------------------------------------------
// Memory

export interface HostPeak {
  rss: number;
  arrayBuffers: number;
}

export function sampleHost(peak: HostPeak): void {
  const m = process.memoryUsage();
  if (m.rss > peak.rss) peak.rss = m.rss;
  if (m.arrayBuffers > peak.arrayBuffers) peak.arrayBuffers = m.arrayBuffers;
}

export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

// ---------------------------------------------------------------------------------------------
// Tables

/** Prints a markdown table (so the output pastes into the README). */
export function printTable(log: Log, headers: string[], rows: (string | number)[][]): void {
  log(`| ${headers.join(' | ')} |`);
  log(`|${headers.map(() => '---:').join('|')}|`);
  for (const r of rows) log(`| ${r.join(' | ')} |`);
}

export function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** Relative difference |a - b| / max(|a|, |b|, tiny). */
export function relDiff(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);
}

/** max |a - b| / max |b|, elementwise over two arrays of the same length. */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}
