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
 * A batch of products: operand s of A, B and C at its address + s * stride (bytes; stride 0 shares
 * one operand). `sum` adds the products into one C, in order; otherwise each has its own C.
 */
export interface GemmBatch {
  count: number;
  strideA: number;
  strideB: number;
  strideC: number;
  sum: boolean;
}

const SINGLE: GemmBatch = { count: 1, strideA: 0, strideB: 0, strideC: 0, sum: true };

/** matmulBlockSum's `own`: which operand each thread packs whole for itself. */
const OWN_NONE = 0, OWN_A = 1, OWN_B = 2;

/**
 * C (rows x ldc floats at `c`) = alpha op(A) op(B) + beta C, for each product of `batch`, in one
 * task whose parts the threads claim. Products with their own C split over samples, then columns;
 * a sum (one C) over rows or columns of C, whichever is longer, each part running every product in
 * order. Each element's sum is the same whatever the split. The operand every part reads whole
 * (op(A) when columns are split, op(B) when rows are), unless read in place, is packed once per
 * thread when it is one operand for all the products, each thread packing its own copy (reading
 * another core's writes costs more than packing again); several (a batch) once by all threads.
 */
export function gemm(rt: Runtime, a: number, b: number, c: number, m: number, n: number, k: number, ldc: number, transA: boolean, transB: boolean, alpha: number, beta: number, batch: GemmBatch = SINGLE): void {
  const threads = batch.count * m * n * k >= THREAD_WORK ? rt.threads : 1;
  const separate = !batch.sum && batch.count > 1;
  const byCols = separate || n >= m;
  // Separate products give parallelism by themselves: columns are split only when too few.
  const ranges = separate
    ? splitRange(n, threads, 8, batch.count)
    : splitRange(byCols ? n : m, threads, byCols ? 8 : 4);
  const samples = separate ? batch.count : 1;
  const e = rt.exports;
  // op(A) or op(B), packed whole, for each distinct operand (a stride of 0: one for all).
  const whole = byCols ? { name: 'packARows', src: a, len: m, q: 4, stride: batch.strideA, trans: transA, bytes: e.packedABytes(m, k) }
    : { name: 'packBCols', src: b, len: n, q: 8, stride: batch.strideB, trans: transB, bytes: e.packedBBytes(n, k) };
  const copies = whole.stride === 0 ? 1 : batch.count;
  // Kernels read op(A) = A in place (its rows are k-contiguous already): only A^T and op(B) are packed.
  const packWhole = k > 0 && (!byCols || transA) && samples * ranges.length > copies;
  const own = packWhole && copies === 1 ? (byCols ? OWN_A : OWN_B) : OWN_NONE;
  const block = !packWhole ? null : rt.heap.alloc(whole.bytes * (own ? rt.threads : copies), 'matmul packed operand');
  try {
    if (block && own) {
      rt.scratch.forEach((s, t) => e.matmulOwnPacking(s, block.ptr + t * whole.bytes));
    } else if (block) {
      const pieces = splitRange(whole.len, threads, whole.q, copies);
      const packs: number[][] = [];
      for (let s = 0; s < copies; s++) {
        for (const [r0, r1] of pieces) packs.push([whole.src + s * whole.stride, whole.len, k, whole.trans ? 1 : 0, r0, r1, block.ptr + s * whole.bytes]);
      }
      runParts(rt, whole.name, packs);
    }
    const pre = block && !own ? block.ptr : 0, preStride = copies > 1 ? whole.bytes : 0;
    const preA = byCols ? pre : 0, preB = byCols ? 0 : pre;
    const parts: number[][] = [];
    for (let s = 0; s < samples; s++) {
      for (const [r0, r1] of ranges) {
        // The last argument is the running thread's scratch block, filled in by runParts.
        parts.push([
          a + s * batch.strideA, b + s * batch.strideB, c + s * batch.strideC, m, n, k, ldc, transA ? 1 : 0, transB ? 1 : 0, alpha, beta,
          byCols ? 0 : r0, byCols ? m : r1, byCols ? r0 : 0, byCols ? r1 : n,
          separate ? 1 : batch.count, batch.strideA, batch.strideB, preA && preA + s * preStride, preB, separate ? 0 : preStride, own, 0,
        ]);
      }
    }
    runParts(rt, 'matmulBlockSum', parts, true);
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
