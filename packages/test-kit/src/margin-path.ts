/**
 * Which path the WebAssembly backend's fused margin loss takes for a transform: the SIMD loop runs
 * the non-target scores from the transform's `otherLinear` (or `otherPower`), and never calls its
 * `other`; the TypeScript reference calls `other` once per non-target score.
 */
import { createWasmBackend } from '@fr/backend-wasm';
import type { Backend, MarginLossParams, MarginTransform, Reducer } from '@fr/core';

/**
 * Calls of `t.other` during a margin loss (softmax-ce unless `reducer` says otherwise) of `rows` x
 * `cols` scores on the wasm backend (2 threads), after a first run on the same transform (where the
 * backend checks a declaration once): 0 on the SIMD path, about rows * cols on the reference.
 * `context` is every row's context; `contextGrad` asks for its gradient (MagFace's trained feature
 * norm); `bias` is the scalar added to every logit (SphereFace2's); `half` holds the logits and
 * the gradient in float16 (a sharded head's storage).
 */
export async function wasmOtherCalls(
  t: MarginTransform, opts: { context?: number; contextGrad?: boolean; reducer?: Reducer; bias?: number; half?: boolean } = {},
): Promise<number> {
  const rows = 8, cols = 512, context = opts.context ?? 0.3;
  let calls = 0;
  const counted: MarginTransform = { ...t, other: (z, u, row) => (calls++, t.other(z, u, row)) };
  const b: Backend = await createWasmBackend({ threads: 2 });
  try {
    const upload = (x: Float32Array | Int32Array, dtype: 'float32' | 'int32' | 'float16') => {
      const buf = b.alloc(x.length, dtype);
      b.write(buf, x);
      return buf;
    };
    const scores = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.731) * 0.95);
    const p: MarginLossParams<unknown> = {
      logits: upload(scores, opts.half ? 'float16' : 'float32'), labels: upload(Int32Array.from({ length: rows }, (_, r) => (r * 37) % cols), 'int32'),
      grad: upload(new Float32Array(rows * cols), opts.half ? 'float16' : 'float32'), rowLoss: upload(new Float32Array(rows), 'float32'),
      rowLogitGrad: upload(new Float32Array(rows), 'float32'), rowContext: upload(new Float32Array(rows).fill(context), 'float32'),
      rowContextGrad: opts.contextGrad ? upload(new Float32Array(rows), 'float32') : null,
      bias: opts.bias === undefined ? null : upload(Float32Array.of(opts.bias), 'float32'), rowLogSumExp: null, globalLogSumExp: null,
      rows, cols, classOffset: 0, transform: counted, reducer: opts.reducer ?? 'softmax-ce', positiveWeight: 0.7, negativeWeight: 0.3, scale: 1 / rows,
      halfLogits: opts.half, halfGrad: opts.half,
    };
    b.kernels.marginLoss(p);
    await b.read(p.rowLoss, 'float32', rows);
    calls = 0;
    b.kernels.marginLoss(p);
    const loss = await b.read(p.rowLoss, 'float32', rows);
    if (!loss.every(Number.isFinite)) throw new Error(`wasmOtherCalls: ${t.key} gave a non-finite row loss`);
    return calls;
  } finally {
    b.dispose();
  }
}
