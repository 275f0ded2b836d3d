import { BackendError, type DType } from '@fr/core';
import type { CpuBuffer } from '@fr/backend-cpu';
import type { Heap } from './heap.js';
import type { KernelExports } from './module.js';
import type { ThreadPool } from './pool.js';

/** A buffer of the wasm backend: a block of the shared memory. */
export class WasmBuffer {
  constructor(
    readonly ptr: number,
    readonly size: number,
    readonly dtype: DType,
    readonly label: string,
    /** Bytes reserved (the heap's size class). */
    readonly reserved: number,
  ) {}
}

/** What the kernels run on: the memory, its heap, the module's exports and the worker threads. */
export interface Runtime {
  memory: WebAssembly.Memory;
  heap: Heap;
  exports: KernelExports;
  /** null with one thread. */
  pool: ThreadPool | null;
  threads: number;
  /** Per thread: a scratch block of `exports.matmulScratchBytes()` bytes. */
  scratch: number[];
}

/** The typed-array view of a buffer over the current memory (the memory may have grown since). */
export function view(rt: Runtime, b: WasmBuffer): CpuBuffer {
  const buf = rt.memory.buffer;
  const data = b.dtype === 'float16' ? new Uint16Array(buf, b.ptr, b.size)
    : b.dtype === 'int32' ? new Int32Array(buf, b.ptr, b.size)
      : new Float32Array(buf, b.ptr, b.size);
  return { dtype: b.dtype, data, label: b.label };
}

export function requireFloat32(b: WasmBuffer, kernel: string): void {
  if (b.dtype !== 'float32') throw new BackendError(`wasm backend: ${kernel} reads and writes float32, but ${b.label || 'a buffer'} holds ${b.dtype}`);
}

/** Most parts of one task (claims count in 16 bits); runParts runs more as several tasks. */
export const MAX_PARTS = 256;

/**
 * Runs a kernel export on every part: claimed by the threads, or in turn on one thread. With
 * `withScratch` the last argument is replaced by the running thread's scratch block.
 */
export function runParts(rt: Runtime, name: string, parts: number[][], withScratch = false): void {
  const pool = rt.pool;
  if (pool) {
    // A task holds at most MAX_PARTS parts; more run as several tasks, in order.
    for (let i = 0; i < parts.length; i += MAX_PARTS) pool.run(name, parts.slice(i, i + MAX_PARTS), withScratch);
    return;
  }
  const fn = rt.exports[name] as (...a: number[]) => void;
  for (const part of parts) {
    const args = part.slice();
    if (withScratch) args[args.length - 1] = rt.scratch[0];
    fn(...args);
  }
}

/** Parts per thread: a thread that falls behind (descheduled, a slower core) leaves its last parts to the others. */
const PARTS_PER_THREAD = 3;

/**
 * Splits [0, total) into ranges whose bounds are multiples of `quantum`: one range on one thread,
 * otherwise one share per thread (the pool's thread t owns run t of the parts), each share in
 * PARTS_PER_THREAD parts of decreasing size, a half and two quarters. A thread that finishes its
 * share takes the next parts of a slower thread's, and those are the small ones: worked out for one
 * core at 25 GFLOP/s and the other at 39, equal thirds end 9% after a perfect split, a half and two
 * quarters 2.5%. With `among` units of work (samples, products) each split the same way,
 * the few parts per thread are shared among them, in even pieces.
 */
export function splitRange(total: number, threads: number, quantum: number, among = 1): [number, number][] {
  if (threads <= 1) return splitInto(total, 1, quantum);
  if (among > 1) return splitInto(total, Math.ceil((threads * PARTS_PER_THREAD) / among), quantum);
  const shares = splitInto(total, threads, quantum);
  // As many parts in every share, so that the pool's runs (parts / threads each) are the shares.
  const fewest = Math.min(...shares.map(([s, e]) => Math.ceil((e - s) / quantum)));
  const parts = shares.length === threads ? Math.min(PARTS_PER_THREAD, fewest) : 1;
  return shares.flatMap(([s, e]) => decreasing(s, e, parts, quantum));
}

/** [s, e) in `parts` pieces on multiples of `quantum` from s: a half and two quarters when three fit, else even. */
function decreasing(s: number, e: number, parts: number, quantum: number): [number, number][] {
  const quanta = Math.ceil((e - s) / quantum);
  if (parts < PARTS_PER_THREAD || quanta < 4) return splitInto(e - s, parts, quantum).map(([a, b]) => [s + a, s + b]);
  const quarter = Math.floor(quanta / 4);
  const cuts = [s, s + (quanta - 2 * quarter) * quantum, s + (quanta - quarter) * quantum, e];
  return [[cuts[0], cuts[1]], [cuts[1], cuts[2]], [cuts[2], cuts[3]]];
}

/**
 * Splits [0, total) into at most `pieces` ranges whose bounds are multiples of `quantum`, as even
 * as the quantum allows: 256 columns in two are 128 each, where pieces of 48 left one thread 144.
 */
export function splitInto(total: number, pieces: number, quantum: number): [number, number][] {
  const quanta = Math.ceil(total / quantum);
  const count = Math.max(1, Math.min(pieces, quanta));
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    // Piece i ends at quantum round(quanta * (i + 1) / count): sizes differ by at most one quantum.
    const end = Math.min(total, Math.round((quanta * (i + 1)) / count) * quantum);
    if (end > start) out.push([start, end]);
    start = end;
  }
  return out.length ? out : [[0, 0]];
}

/** Node's global process, when running in Node. */
export const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

/**
 * Imports a Node built-in at run time. The specifier is not a literal, so bundlers leave it alone
 * and a page's bundle holds no Node module (pages never take this path: `isNode` is false there).
 */
export function importNodeBuiltin<T>(name: string): Promise<T> {
  return import(/* @vite-ignore */ name) as Promise<T>;
}
