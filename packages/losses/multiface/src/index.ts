/**
 * @fr/multiface: MultiFace (Xu et al. 2021), a higher-order loss, as `KikimorMay/MultiFace@4df7206ec7db`
 * `model.py` (`MultiSphereSoftmax`, `MultiAm_softmax`, `ArcfaceMultiSphere`). The embedding is
 * L2-normalised as a whole and cut into N contiguous slices (not re-normalised, so each slice lies
 * inside the unit ball); slice i is scored against its own class weights, normalised per slice, by
 * a base cosine-margin loss; the loss is the SUM of the N losses. Evaluation uses the whole feature.
 *
 * The head keeps ONE weight tensor [C, D] whose column slices are the N classifiers, so a
 * checkpoint of a MultiFace head has the shape of any other cosine head. Deliberate differences
 * (README): defaults parts 2 and m 0.3 (the official runs, not the classes' defaults), s a parameter
 * for every base, that one N(0, 0.01) weight, the head normalises the raw embeddings itself, and the
 * ArcFace base floors sin(theta) at 1e-3 in its slope and keeps the slope outside [-1, 1].
 */
import {
  assertEmbeddings,
  add,
  arcMarginTransform,
  classWeights,
  defineLoss,
  defineTransform,
  l2normalize,
  labelTensor,
  marginLoss,
  matmul,
  scaledTransform,
  ConfigError,
  sliceCols,
  z,
  type HeadContext,
  type LossHead,
  type MarginTransform,
  type Tensor,
} from '@fr/core';

export interface MultiPartHeadOptions {
  /** Name prefix of the head's tensors. */
  name: string;
  /** Number of slices N; the embedding dimension must be a multiple of it. */
  parts: number;
  /** The base loss's transform, applied to every slice's cosines. */
  transform: () => MarginTransform;
}

/**
 * The MultiFace head for any cosine-margin transform: N slices, one classifier each, summed
 * softmax cross-entropy losses (each a batch mean).
 */
export function multiPartHead(ctx: HeadContext<unknown>, o: MultiPartHeadOptions): LossHead {
  const { parts } = o;
  if (!Number.isInteger(parts) || parts < 1 || ctx.embeddingDim % parts !== 0) {
    throw new ConfigError(`${o.name}: embedding dimension ${ctx.embeddingDim} cannot be cut into ${parts} equal slices`);
  }
  const width = ctx.embeddingDim / parts;
  const weight = classWeights(ctx, `${o.name}.weight`);
  return {
    parameters: [{ name: weight.name, tensor: weight }],
    buffers: [],
    forward(embeddings, labels) {
      assertEmbeddings(embeddings, ctx.embeddingDim, o.name);
      const batch = embeddings.shape[0];
      const y = labelTensor(ctx.backend, labels, ctx.numClasses, `${o.name} labels`);
      const xn = l2normalize(embeddings);
      const transform = o.transform();
      let total: Tensor | null = null;
      for (let i = 0; i < parts; i++) {
        const wi = l2normalize(sliceCols(weight, i * width, width));
        const cos = matmul(sliceCols(xn, i * width, width), wi, { transB: true });
        const li = marginLoss(cos, y, { transform, reducer: 'softmax-ce', scale: 1 / batch });
        total = total ? add(total, li) : li;
      }
      return total!;
    },
    dispose() {
      weight.dispose();
    },
  };
}

/** MultiFace's AM-softmax: the cosine is clamped to [-1, 1] (no gradient outside) before s (cos - m). */
export function multiCosfaceTransform(s: number, m: number): MarginTransform {
  return defineTransform({
    key: 'multiface-cosface',
    uniforms: { s, m },
    target: (z, u) => u.s * (Math.min(Math.max(z, -1), 1) - u.m),
    targetGrad: (z, u) => (Math.abs(z) <= 1 ? u.s : 0),
    other: (z, u) => u.s * Math.min(Math.max(z, -1), 1),
    otherGrad: (z, u) => (Math.abs(z) <= 1 ? u.s : 0),
    otherLinear: { scale: s, lo: -1, hi: 1, slope: s, slopeOutside: 0 },
    wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * (clamp(z, -1.0, 1.0) - u.m); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return select(0.0, u.s, abs(z) <= 1.0); }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, -1.0, 1.0); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return select(0.0, u.s, abs(z) <= 1.0); }
`,
  });
}

/** MultiFace's ArcFace: the classic th/mm form with the exact gradient (core's `arcMarginTransform`). */
export const multiArcfaceTransform = (s: number, m: number): MarginTransform => arcMarginTransform(s, m, 'exact');

export const multifaceParams = z.object({
  parts: z.number().int().min(1).default(2).describe('number of slices N (the MultiFace README uses 2 for ArcFace/CosFace, 4 for softmax)'),
  base: z.enum(['softmax', 'cosface', 'arcface']).default('arcface').describe('loss applied to every slice: softmax (s cos), cosface, arcface (classic exact form)'),
  s: z.number().positive().default(64).describe('scale of every slice\'s logits'),
  m: z.number().min(0).default(0.3).describe('margin of the base loss (ignored by softmax)'),
});

export type MultiFaceParams = z.infer<typeof multifaceParams>;

export function multifaceTransform(p: MultiFaceParams): MarginTransform {
  switch (p.base) {
    case 'softmax': return scaledTransform(p.s);
    case 'cosface': return multiCosfaceTransform(p.s, p.m);
    case 'arcface': return multiArcfaceTransform(p.s, p.m);
  }
}

export const multiface = defineLoss({
  name: 'multiface',
  description: 'MultiFace: N slices of the normalised embedding, one softmax/cosface/arcface classifier each, summed (KikimorMay/MultiFace)',
  params: multifaceParams,
  createHead(ctx) {
    const transform = multifaceTransform(ctx.params);
    return multiPartHead(ctx, { name: 'multiface', parts: ctx.params.parts, transform: () => transform });
  },
});

export default multiface;
