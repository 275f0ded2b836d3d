import { BackendError, float16ToFloat32Array, float32ToFloat16Bits, type MatmulParams } from '@fr/core';
import { f16, f32, type CpuBuffer } from './buffer.js';

/**
 * Packs op(A) as m x k rows and op(B) as n x k rows, then computes 4x4 output blocks with 16
 * accumulators: each pair of loaded values feeds four multiply-adds, which is what makes a JS
 * matmul several times faster than the naive triple loop. Accumulation is in float64.
 */
export function matmul(a: CpuBuffer, b: CpuBuffer, out: CpuBuffer, p: MatmulParams): void {
  const { m, n, k, alpha, beta } = p;
  if (p.halfC && beta !== 0) throw new BackendError(`cpu backend: matmul into float16 ${out.label || 'output'} needs beta 0, got ${beta}`);
  // A float16 operand is expanded to a float32 copy for the product's duration.
  const A = packRows(p.halfA ? float16ToFloat32Array(f16(a)) : f32(a), m, k, p.transA);
  const Bt = packRows(p.halfB ? float16ToFloat32Array(f16(b)) : f32(b), n, k, !p.transB);
  const H = p.halfC ? f16(out) : null;
  const C = H ? null : f32(out);
  const store = H
    ? (i: number, j: number, v: number) => { H[i * n + j] = float32ToFloat16Bits(Math.fround(alpha * v)); }
    : (i: number, j: number, v: number) => {
      const idx = i * n + j;
      C![idx] = beta === 0 ? alpha * v : alpha * v + beta * C![idx];
    };
  const m4 = m - (m % 4);
  const n4 = n - (n % 4);
  for (let i = 0; i < m4; i += 4) {
    const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
    for (let j = 0; j < n4; j += 4) {
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let t = 0; t < k; t++) {
        const x0 = A[a0 + t], x1 = A[a1 + t], x2 = A[a2 + t], x3 = A[a3 + t];
        const y0 = Bt[b0 + t], y1 = Bt[b1 + t], y2 = Bt[b2 + t], y3 = Bt[b3 + t];
        c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
        c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
        c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
        c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
      }
      store(i, j, c00); store(i, j + 1, c01); store(i, j + 2, c02); store(i, j + 3, c03);
      store(i + 1, j, c10); store(i + 1, j + 1, c11); store(i + 1, j + 2, c12); store(i + 1, j + 3, c13);
      store(i + 2, j, c20); store(i + 2, j + 1, c21); store(i + 2, j + 2, c22); store(i + 2, j + 3, c23);
      store(i + 3, j, c30); store(i + 3, j + 1, c31); store(i + 3, j + 2, c32); store(i + 3, j + 3, c33);
    }
  }
  // Edges: the rows below m4 and the columns right of n4.
  const dot = (i: number, j: number) => {
    let s = 0;
    const ai = i * k, bj = j * k;
    for (let t = 0; t < k; t++) s += A[ai + t] * Bt[bj + t];
    store(i, j, s);
  };
  for (let i = 0; i < m4; i++) for (let j = n4; j < n; j++) dot(i, j);
  for (let i = m4; i < m; i++) for (let j = 0; j < n; j++) dot(i, j);
}

/** Returns `rows` x `cols` row-major; the source is stored rows x cols, or cols x rows if `transposed`. */
function packRows(src: Float32Array, rows: number, cols: number, transposed: boolean): Float32Array {
  if (!transposed) return src.length === rows * cols ? src : src.subarray(0, rows * cols);
  const out = new Float32Array(rows * cols);
  // Transpose in 32x32 tiles to stay in cache.
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    for (let c0 = 0; c0 < cols; c0 += T) {
      const r1 = Math.min(rows, r0 + T), c1 = Math.min(cols, c0 + T);
      for (let c = c0; c < c1; c++) {
        const s = c * rows;
        for (let r = r0; r < r1; r++) out[r * cols + c] = src[s + r];
      }
    }
  }
  return out;
}
