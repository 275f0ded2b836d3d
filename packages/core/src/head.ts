/**
 * A loss head as data: a cosine classifier, a margin transform and a reducer, with the per-row inputs and
 * extra terms a loss needs. `cosineMarginHead` runs it on one device; @fr/scale builds the same description as
 * Partial FC, sharded and float16 heads. A loss needing other code writes its own `LossHead`, run only as written.
 */
import { ConfigError } from './errors.js';
import type { Reducer } from './kernels.js';
import { assertEmbeddings, classWeights, labelTensor, marginLoss, maxOverGroups, type HeadContext, type HeadInputs, type LossHead, type NamedTensor } from './loss.js';
import type { MarginTransform } from './margin.js';
import { add, l2normalize, matmul } from './ops.js';
import { noGrad } from './tape.js';
import { tensor, type Tensor } from './tensor.js';

export interface HeadDescription {
  /** Name prefix of the head's tensors in checkpoints. */
  name: string;
  /** The transform for this step (it may read running state). */
  transform: () => MarginTransform;
  reducer: Reducer;
  /** sigmoid-ova weights of the target term and of each non-target term. */
  positiveWeight?: number;
  negativeWeight?: number;
  /** Multiplier of the summed per-row losses; default 1 / batch (mean). */
  scale?: (batch: number) => number;
  /** A trainable scalar bias added to every logit (SphereFace2), with its initial value. */
  bias?: number;
  /**
   * Weight layout: K sub-centres per class (sub-center ArcFace), C * K rows with class c's in rows
   * c K .. c K + K - 1; a class's score is the largest over its rows. Default 1: C rows.
   */
  subCenters?: number;
  /**
   * Per-row input of the transform (`row.context`: the feature norm, a drawn margin, a value of
   * running buffers), from the raw and the normalised embeddings and the forward's `HeadInputs`, once per step.
   */
  rowContext?: (embeddings: Tensor, normalized: Tensor, inputs?: HeadInputs) => Tensor | null;
  /** The `HeadInputs` rowContext reads (a head drawing random margins takes `margins` in their place). */
  takes?: readonly (keyof HeadInputs)[];
  /** Per-row input read from the whole score matrix [B, C] instead (CurricularFace's running t), under no gradient. */
  scoreContext?: (cos: Tensor, labels: Int32Array) => Tensor;
  /** Called after each forward with the whole score matrix, to update running state. */
  afterForward?: (cos: Tensor, labels: Tensor) => void;
  /** A loss term of the raw embeddings added to the margin loss (MagFace's regulariser), recorded on the tape. */
  extraLoss?: (embeddings: Tensor) => Tensor;
  /** Non-trainable state (running averages), owned by whoever builds the head. */
  buffers?: NamedTensor[];
}

/** The options of `cosineMarginHead` are a head description. */
export type CosineMarginHeadOptions = HeadDescription;

/**
 * The cosine classifier of the field: cos = normalize(x) normalize(W)^T (max over sub-centres),
 * then the fused loss, plus any extra term. The head carries its description.
 */
export function cosineMarginHead(ctx: HeadContext<unknown>, o: HeadDescription): LossHead {
  const k = o.subCenters ?? 1;
  const buffers = o.buffers ?? [];
  if (ctx.describeOnly) {
    return {
      parameters: [], buffers, description: o, takes: o.takes,
      forward: () => { throw new ConfigError(`${o.name}: this head was made for its description only (describeOnly)`); },
      dispose: () => { for (const b of buffers) b.tensor.dispose(); },
    };
  }
  const weight = classWeights({ ...ctx, numClasses: ctx.numClasses * k }, `${o.name}.weight`);
  const bias = o.bias === undefined ? null : tensor(ctx.backend, [o.bias], [1], { requiresGrad: true, name: `${o.name}.bias` });
  const parameters: NamedTensor[] = [{ name: weight.name, tensor: weight }];
  if (bias) parameters.push({ name: bias.name, tensor: bias });
  return {
    parameters,
    buffers,
    description: o,
    takes: o.takes,
    forward(embeddings, labels, inputs) {
      assertEmbeddings(embeddings, ctx.embeddingDim, o.name);
      const refused = Object.entries(inputs ?? {}).filter(([key, v]) => v !== undefined && !o.takes?.includes(key as keyof HeadInputs)).map(([key]) => key);
      if (refused.length) throw new ConfigError(`${o.name}: the head takes no input ${refused.join(', ')} (it takes: ${o.takes?.join(', ') || 'none'})`);
      const batch = embeddings.shape[0];
      const y = labelTensor(ctx.backend, labels, ctx.numClasses, `${o.name} labels`);
      const xn = l2normalize(embeddings);
      const scores = matmul(xn, l2normalize(weight), { transB: true });
      const cos = k > 1 ? maxOverGroups(scores, k) : scores;
      const loss = marginLoss(cos, y, {
        transform: o.transform(),
        reducer: o.reducer,
        scale: o.scale ? o.scale(batch) : 1 / batch,
        positiveWeight: o.positiveWeight,
        negativeWeight: o.negativeWeight,
        rowContext: o.rowContext?.(embeddings, xn, inputs) ?? (o.scoreContext ? noGrad(() => o.scoreContext!(cos, labels)) : null),
        bias,
      });
      o.afterForward?.(cos, y);
      return o.extraLoss ? add(loss, o.extraLoss(embeddings)) : loss;
    },
    dispose() {
      for (const p of parameters) p.tensor.dispose();
      for (const b of buffers) b.tensor.dispose();
    },
  };
}
