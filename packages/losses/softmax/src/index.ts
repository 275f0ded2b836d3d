/**
 * @fr/softmax: the three baselines without margin.
 * - `softmax`: cross-entropy over x W^T (W not normalised), optionally with a per-class bias, as
 *   `ydwen/opensphere@a679e8203245` `model/head/softmaxloss.py` (which always has the bias);
 * - `l2softmax`: L2-constrained softmax (Ranjan et al. 2017, no official code): features scaled to
 *   a fixed norm alpha, then a plain softmax classifier with bias, CE(alpha x/|x| W^T + b);
 * - `normface`: NormFace (Wang et al. 2017): both normalised, CE(s cos), as the NORMFACE head of
 *   `xujiamu123/X2-Softmax@9899232cb316` (`loss.py`, `backbones.py` `my_CE_2`).
 * Softmax and L2-softmax compute their logits with core ops and reduce with the identity transform.
 * Deliberate differences (README): softmax has no bias unless `bias: true`; class weights are
 * [C, D] initialised N(0, 0.01) (opensphere: xavier_normal_, a different scale for unnormalised W).
 */
import {
  assertEmbeddings,
  addRowVector,
  classWeights,
  cosineMarginHead,
  defineLoss,
  identityTransform,
  l2normalize,
  labelTensor,
  marginLoss,
  matmul,
  scale,
  scaledTransform,
  ConfigError,
  ShapeError,
  tensor,
  z,
  type HeadContext,
  type LossHead,
  type NamedTensor,
  type Tensor,
} from '@fr/core';

/**
 * The smallest feature norm alpha at which a class can reach probability p among C classes
 * (Ranjan et al., eq. 7): alpha_low = log(p (C - 2) / (1 - p)).
 */
export function alphaLowerBound(numClasses: number, p: number): number {
  if (!(p > 0 && p < 1)) throw new ConfigError(`alphaLowerBound: p must be in (0, 1), got ${p}`);
  if (!(numClasses > 2)) throw new ConfigError(`alphaLowerBound: needs more than 2 classes, got ${numClasses}`);
  return Math.log((p * (numClasses - 2)) / (1 - p));
}

interface LinearHeadOptions {
  name: string;
  /** Scale applied to the normalised features; null keeps the raw features (plain softmax). */
  alpha: number | null;
  bias: boolean;
}

/** A linear classifier (W not normalised, optional bias) reduced by softmax cross-entropy. */
function linearSoftmaxHead(ctx: HeadContext<unknown>, o: LinearHeadOptions): LossHead {
  const weight = classWeights(ctx, `${o.name}.weight`);
  const bias = o.bias ? tensor(ctx.backend, new Float32Array(ctx.numClasses), [ctx.numClasses], { requiresGrad: true, name: `${o.name}.bias` }) : null;
  const parameters: NamedTensor[] = [{ name: weight.name, tensor: weight }];
  if (bias) parameters.push({ name: bias.name, tensor: bias });
  return {
    parameters,
    buffers: [],
    forward(embeddings, labels) {
      assertEmbeddings(embeddings, ctx.embeddingDim, o.name);
      const batch = embeddings.shape[0];
      const y = labelTensor(ctx.backend, labels, ctx.numClasses, `${o.name} labels`);
      const x: Tensor = o.alpha === null ? embeddings : l2normalize(embeddings);
      let logits = matmul(x, weight, { transB: true });
      if (o.alpha !== null) logits = scale(logits, o.alpha);
      if (bias) logits = addRowVector(logits, bias);
      return marginLoss(logits, y, { transform: identityTransform, reducer: 'softmax-ce', scale: 1 / batch });
    },
    dispose() {
      for (const p of parameters) p.tensor.dispose();
    },
  };
}

export const softmaxParams = z.object({
  bias: z.boolean().default(false).describe('add a trainable per-class bias (opensphere softmaxloss.py has one; the reference cases do not)'),
});

export const softmax = defineLoss({
  name: 'softmax',
  description: 'plain softmax cross-entropy over x W^T, W not normalised (opensphere softmaxloss.py)',
  params: softmaxParams,
  createHead: (ctx) => linearSoftmaxHead(ctx, { name: 'softmax', alpha: null, bias: ctx.params.bias }),
});

export const l2softmaxParams = z.object({
  alpha: z.number().positive().default(16).describe('fixed feature norm; keep it above alphaLowerBound(C, p)'),
});

export const l2softmax = defineLoss({
  name: 'l2softmax',
  description: 'L2-constrained softmax (Ranjan et al. 2017): CE(alpha x/|x| W^T + b)',
  params: l2softmaxParams,
  createHead: (ctx) => linearSoftmaxHead(ctx, { name: 'l2softmax', alpha: ctx.params.alpha, bias: true }),
});

export const normfaceParams = z.object({
  s: z.number().positive().default(30).describe('scale of the cosine logits'),
});

export const normface = defineLoss({
  name: 'normface',
  description: 'NormFace: CE(s cos) with features and class weights normalised, exact gradient',
  params: normfaceParams,
  createHead(ctx) {
    const transform = scaledTransform(ctx.params.s);
    return cosineMarginHead(ctx, { name: 'normface', transform: () => transform, reducer: 'softmax-ce' });
  },
});
