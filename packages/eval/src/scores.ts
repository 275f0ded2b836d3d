/**
 * Similarity scores computed on a backend in blocks, so that neither a million pairs nor a large
 * gallery ever needs the full N x N similarity matrix in memory.
 */
import { type Backend, DataError, gatherRows, matmul, mul, sumAxis, tensor, tidy, type Tensor } from '@fr/core';

function checkMatrix(what: string, data: ArrayLike<number>, dim: number): number {
  if (!Number.isInteger(dim) || dim < 1 || data.length % dim !== 0) {
    throw new DataError(`${what}: ${data.length} values are not rows of ${dim}`);
  }
  return data.length / dim;
}

function toF32(data: ArrayLike<number>): Float32Array {
  return data instanceof Float32Array ? data : Float32Array.from(data);
}

async function readAndDispose(t: Tensor): Promise<Float32Array> {
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}

export interface BlockOptions {
  /** Rows of the left operand per block. Default 1024. */
  blockRows?: number;
}

/**
 * Calls `visit(rowStart, rows, block)` with `block` = A[rowStart : rowStart+rows] @ B^T (row-major,
 * rows x nB), one block of rows at a time. For unit rows these are cosine similarities.
 */
export async function similarityBlocks(
  backend: Backend,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dim: number,
  visit: (rowStart: number, rows: number, block: Float32Array) => void,
  o: BlockOptions = {},
): Promise<void> {
  const nA = checkMatrix('similarityBlocks A', a, dim);
  const nB = checkMatrix('similarityBlocks B', b, dim);
  const blockRows = o.blockRows ?? 1024;
  const A = toF32(a);
  const bT = tensor(backend, toF32(b), [nB, dim], { name: 'eval.gallery' });
  try {
    for (let r0 = 0; r0 < nA; r0 += blockRows) {
      const rows = Math.min(blockRows, nA - r0);
      const s = tidy(() => matmul(tensor(backend, A.subarray(r0 * dim, (r0 + rows) * dim), [rows, dim]), bT, { transB: true }));
      visit(r0, rows, await readAndDispose(s));
    }
  } finally {
    bT.dispose();
  }
}

export interface PairScoreOptions {
  /** Pairs per block. Default 4096. */
  blockPairs?: number;
  /**
   * A block is scored as one matmul of its distinct left rows by its distinct right rows when
   * that product has at most `density` x (pairs in the block) entries; otherwise the pairs are
   * gathered and dotted row by row (unique pairs, as in LFW, would waste a whole matrix).
   * Default 8.
   */
  density?: number;
}

/**
 * Dot products of pairs of rows of `embeddings` (N x dim): score p = <e[left[p]], e[right[p]]>,
 * the cosine similarity for unit rows. Pairs are grouped by left row so that repeated templates
 * (IJB-style, millions of pairs among thousands of templates) share one matmul block.
 */
export async function pairScores(
  backend: Backend,
  embeddings: ArrayLike<number>,
  dim: number,
  left: ArrayLike<number>,
  right: ArrayLike<number>,
  o: PairScoreOptions = {},
): Promise<Float32Array> {
  const n = checkMatrix('pairScores', embeddings, dim);
  if (left.length !== right.length) throw new DataError(`pairScores: ${left.length} left indices but ${right.length} right`);
  const P = left.length;
  for (let p = 0; p < P; p++) {
    for (const idx of [left[p], right[p]]) {
      if (!Number.isInteger(idx) || idx < 0 || idx >= n) throw new DataError(`pairScores: pair ${p} names row ${idx}, outside 0..${n - 1}`);
    }
  }
  const E = toF32(embeddings);
  const blockPairs = o.blockPairs ?? 4096;
  const density = o.density ?? 8;
  const order = Int32Array.from({ length: P }, (_, i) => i).sort((x, y) => left[x] - left[y] || right[x] - right[y]);
  const out = new Float32Array(P);
  const gatherHost = (ids: readonly number[]) => {
    const g = new Float32Array(ids.length * dim);
    ids.forEach((id, r) => g.set(E.subarray(id * dim, (id + 1) * dim), r * dim));
    return g;
  };
  const eT = tensor(backend, E, [n, dim], { name: 'eval.embeddings' });
  try {
    for (let s = 0; s < P; s += blockPairs) {
      const idx = order.subarray(s, Math.min(P, s + blockPairs));
      const rows = [...new Set(Array.from(idx, (p) => left[p]))];
      const cols = [...new Set(Array.from(idx, (p) => right[p]))];
      if (rows.length * cols.length <= density * idx.length) {
        const rowOf = new Map(rows.map((r, i) => [r, i]));
        const colOf = new Map(cols.map((c, i) => [c, i]));
        const block = await readAndDispose(tidy(() => matmul(
          tensor(backend, gatherHost(rows), [rows.length, dim]),
          tensor(backend, gatherHost(cols), [cols.length, dim]),
          { transB: true },
        )));
        for (const p of idx) out[p] = block[rowOf.get(left[p])! * cols.length + colOf.get(right[p])!];
      } else {
        const li = Int32Array.from(idx, (p) => left[p]);
        const ri = Int32Array.from(idx, (p) => right[p]);
        const dots = await readAndDispose(tidy(() => sumAxis(mul(
          gatherRows(eT, tensor(backend, li, [li.length], { dtype: 'int32' })),
          gatherRows(eT, tensor(backend, ri, [ri.length], { dtype: 'int32' })),
        ), 1)));
        idx.forEach((p, k) => { out[p] = dots[k]; });
      }
    }
  } finally {
    eT.dispose();
  }
  return out;
}
