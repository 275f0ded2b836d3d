/**
 * Test support for the marginLoss suites (src/margin-loss.test.ts, src/margin-threshold.test.ts):
 * uploads inputs a suite generated, runs the kernel on a backend and reads every output back, so
 * each suite keeps only its own data and its assertions.
 */
import { createCpuBackend } from '@fr/backend-cpu';
import type { Backend, MarginLossParams, MarginTransform, Reducer } from '@fr/core';
import { afterAll, beforeAll } from 'vitest';
import { createWasmBackend } from '../src/index.js';

/** The wasm backend at 1, 2 and 3 threads and the TypeScript reference, opened before a suite's tests and closed after. */
export function suiteBackends(): { one: Backend; two: Backend; three: Backend; reference: Backend } {
  const b = { reference: createCpuBackend() } as { one: Backend; two: Backend; three: Backend; reference: Backend };
  beforeAll(async () => {
    [b.one, b.two, b.three] = await Promise.all([1, 2, 3].map((threads) => createWasmBackend({ threads })));
  });
  afterAll(() => {
    for (const x of [b.one, b.two, b.three, b.reference]) x.dispose();
  });
  return b;
}

/** What a suite's case states; each suite adds its own fields and draws the data from them. */
export interface MarginCase {
  rows: number;
  cols: number;
  /** Where this buffer's classes start (a shard). */
  classOffset?: number;
  bias?: number;
  /** Ask for the row's log-sum-exp. */
  withLse?: boolean;
  /** A global log-sum-exp per row (a sharded head). */
  global?: boolean;
  /** Float16 logits and gradient. */
  half?: boolean;
}

export interface MarginInputs {
  rows: number;
  cols: number;
  classOffset: number;
  /** rows x cols scores, uploaded as float16 with `half`. */
  z: Float32Array;
  labels: Int32Array;
  /** The row context; null: no buffer (the context is 0). */
  context: Float32Array | null;
  bias: number | null;
  /** Per-row log-sum-exp over every shard; null: this buffer holds all the classes. */
  globalLse: Float32Array | null;
  withLse: boolean;
  /** Ask for the row context's gradient. */
  contextGrad: boolean;
  /** Float16 logits and gradient. */
  half: boolean;
  reducer: Reducer;
  positiveWeight: number;
  negativeWeight: number;
}

/** Runs marginLoss; outs are grad, rowLoss, rowLogitGrad, then rowLogSumExp and rowContextGrad when asked for; z the scores as the kernel read them. */
export async function runMarginLoss(b: Backend, t: MarginTransform, x: MarginInputs): Promise<{ outs: Float32Array[]; z: Float32Array }> {
  const { rows, cols } = x;
  const upload = (data: Float32Array | Int32Array, dtype: 'float32' | 'int32' | 'float16') => {
    const buf = b.alloc(data.length, dtype);
    b.write(buf, data);
    return buf;
  };
  const bufs = {
    logits: upload(x.z, x.half ? 'float16' : 'float32'), labels: upload(x.labels, 'int32'),
    grad: upload(new Float32Array(rows * cols).fill(NaN), x.half ? 'float16' : 'float32'),
    rowLoss: upload(new Float32Array(rows), 'float32'), rowLogitGrad: upload(new Float32Array(rows), 'float32'),
    rowContext: x.context ? upload(x.context, 'float32') : null,
    bias: x.bias === null ? null : upload(Float32Array.of(x.bias), 'float32'),
    rowLogSumExp: x.withLse ? upload(new Float32Array(rows), 'float32') : null,
    globalLogSumExp: x.globalLse ? upload(x.globalLse, 'float32') : null,
    rowContextGrad: x.contextGrad ? upload(new Float32Array(rows).fill(NaN), 'float32') : null,
  };
  const p: MarginLossParams<unknown> = {
    ...bufs, rows, cols, classOffset: x.classOffset, transform: t, reducer: x.reducer, positiveWeight: x.positiveWeight, negativeWeight: x.negativeWeight,
    scale: 1 / rows, halfLogits: x.half, halfGrad: x.half,
  };
  b.kernels.marginLoss(p);
  const outs: [unknown, number][] = [[bufs.grad, rows * cols], [bufs.rowLoss, rows], [bufs.rowLogitGrad, rows]];
  if (bufs.rowLogSumExp) outs.push([bufs.rowLogSumExp, rows]);
  if (bufs.rowContextGrad) outs.push([bufs.rowContextGrad, rows]);
  const parts = await Promise.all(outs.map(([o, n]) => b.read(o, 'float32', n)));
  const z = await b.read(bufs.logits, 'float32', rows * cols);
  for (const buf of Object.values(bufs)) if (buf) b.free(buf);
  return { outs: parts as Float32Array[], z: z as Float32Array };
}
