/**
 * Runs a transform's fused margin kernel once on a backend and reads back d loss / d score, for
 * tests of a transform's edges (a cosine beyond +-1, a clamp's bound) on each backend's own code.
 */
import type { Backend } from '../backend.js';
import type { MarginTransform } from '../margin.js';

export interface MarginProbe {
  /** Scores, rows x cols, row-major. */
  scores: readonly number[];
  labels: readonly number[];
  /** One value per row (the transform's row context); zeros when omitted. */
  context?: readonly number[];
  cols: number;
  transform: MarginTransform;
}

/** d loss / d score (softmax cross-entropy, mean over the rows) of one kernel call. */
export async function marginGradients(backend: Backend, p: MarginProbe): Promise<Float32Array> {
  const rows = p.labels.length;
  if (p.scores.length !== rows * p.cols) throw new Error(`marginGradients: ${p.scores.length} scores for ${rows} rows of ${p.cols}`);
  const upload = (data: Float32Array | Int32Array) => {
    const buf = backend.alloc(data.length, data instanceof Int32Array ? 'int32' : 'float32');
    backend.write(buf, data);
    return buf;
  };
  const logits = upload(Float32Array.from(p.scores));
  const labels = upload(Int32Array.from(p.labels));
  const context = upload(Float32Array.from(p.context ?? new Array<number>(rows).fill(0)));
  const [grad, rowLoss, rowLogitGrad] = [rows * p.cols, rows, rows].map((n) => backend.alloc(n, 'float32'));
  try {
    backend.kernels.marginLoss({
      logits, labels, grad, rowLoss, rowLogitGrad, rowContext: context, bias: null, rows, cols: p.cols, classOffset: 0,
      transform: p.transform, reducer: 'softmax-ce', positiveWeight: 1, negativeWeight: 1, scale: 1 / rows,
    });
    return Float32Array.from(await backend.read(grad, 'float32', rows * p.cols));
  } finally {
    for (const buf of [logits, labels, context, grad, rowLoss, rowLogitGrad]) backend.free(buf);
  }
}
