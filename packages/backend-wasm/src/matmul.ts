import { BackendError, convertFromFloat16, convertToFloat16, type MatmulParams } from '@fr/core';
import { runParts, splitRange, view, WasmBuffer, type Runtime } from './runtime.js';

/** Below this many multiply-adds a product runs on one thread (a wake-up costs more). */
const THREAD_WORK = 1 << 17;

/** A temporary float32 block of the memory, for float16 operands. */
function temp(rt: Runtime, size: number, label: string): WasmBuffer {
  const { ptr, size: reserved } = rt.heap.alloc(size * 4, label);
  return new WasmBuffer(ptr, size, 'float32', label, reserved);
}

/**
 * C (rows x ldc floats at `c`) = alpha op(A) op(B) + beta C, split over rows or columns of C
 * (whichever is longer) among the threads. Each element's sum is the same whatever the split.
 * With several parts, the operand every part reads whole (A when columns are split, B when rows
 * are) is packed once, by all threads, instead of once per part.
 */
export function gemm(rt: Runtime, a: number, b: number, c: number, m: number, n: number, k: number, ldc: number, transA: boolean, transB: boolean, alpha: number, beta: number): void {
  const threads = m * n * k >= THREAD_WORK ? rt.threads : 1;
  const byCols = n >= m;
  const ranges = splitRange(byCols ? n : m, threads, byCols ? 8 : 4);
  const shared = ranges.length > 1 && k > 0;
  const e = rt.exports;
  const block = shared ? rt.heap.alloc(byCols ? e.packedABytes(m, k) : e.packedBBytes(n, k), 'matmul packed operand') : null;
  try {
    if (block) {
      const packRanges = splitRange(byCols ? m : n, threads, byCols ? 4 : 8);
      const pack = byCols ? [a, m, k, transA ? 1 : 0] : [b, n, k, transB ? 1 : 0];
      runParts(rt, byCols ? 'packARows' : 'packBCols', packRanges.map(([s, end]) => [...pack, s, end, block.ptr]));
    }
    const preA = block && byCols ? block.ptr : 0, preB = block && !byCols ? block.ptr : 0;
    // The last argument is the running thread's scratch block, filled in by runParts.
    const parts = ranges.map(([s, end]) => [
      a, b, c, m, n, k, ldc, transA ? 1 : 0, transB ? 1 : 0, alpha, beta,
      byCols ? 0 : s, byCols ? m : end, byCols ? s : 0, byCols ? end : n, preA, preB, 0,
    ]);
    runParts(rt, 'matmulBlock', parts, true);
  } finally {
    if (block) rt.heap.release(block.ptr, block.size);
  }
}

export function matmul(rt: Runtime, a: WasmBuffer, b: WasmBuffer, out: WasmBuffer, p: MatmulParams): void {
  const { m, n, k } = p;
  if (p.halfC && p.beta !== 0) throw new BackendError(`wasm backend: matmul into float16 ${out.label || 'output'} needs beta 0, got ${p.beta}`);
  const temps: WasmBuffer[] = [];
  // A float16 operand is widened into a float32 block for the product's duration.
  const widen = (x: WasmBuffer, size: number, half: boolean | undefined): WasmBuffer => {
    if (!half) return x;
    const t = temp(rt, size, `${x.label} (float32)`);
    temps.push(t);
    convertFromFloat16(view(rt, x).data as Uint16Array, view(rt, t).data as Float32Array, size);
    return t;
  };
  try {
    const A = widen(a, m * k, p.halfA);
    const B = widen(b, n * k, p.halfB);
    const C = p.halfC ? temp(rt, m * n, `${out.label} (float32)`) : out;
    if (p.halfC) temps.push(C);
    gemm(rt, A.ptr, B.ptr, C.ptr, m, n, k, n, p.transA, p.transB, p.alpha, p.halfC ? 0 : p.beta);
    if (p.halfC) convertToFloat16(view(rt, C).data as Float32Array, view(rt, out).data as Uint16Array, m * n);
  } finally {
    for (const t of temps) rt.heap.release(t.ptr, t.reserved);
  }
}
