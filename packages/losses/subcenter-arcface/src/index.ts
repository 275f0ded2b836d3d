/**
 * @fr/subcenter-arcface: Sub-center ArcFace (Deng et al., ECCV 2020). Each class has K sub-centers;
 * a sample's cosine to a class is its largest cosine to the class's sub-centers, so noisy samples
 * gather around non-dominant sub-centers instead of pulling the dominant one. Then ArcFace:
 *
 *   cos[b, c] = max_k <x_b/|x_b|, w_{c,k}/|w_{c,k}|>     (gradient to the arg-max sub-center only)
 *   target logit s cos(theta + m), other logits s cos
 *
 * The class weights are one [C*K, D] matrix, sub-centers of class c in rows c*K .. c*K + K - 1
 * (the layout of insightface's reshape to (B, C, K) and of pytorch-metric-learning): the head
 * description's `subCenters`, which core's `cosineMarginHead` reduces with `maxOverGroups`. The margin
 * is core's `arcMarginTransform`, as @fr/arcface's: "detached" (opensphere / current insightface
 * form, margin under no_grad) or
 * "exact" (classic th/mm form, differentiated), so K = 1 is exactly @fr/arcface.
 */
import { arcMarginTransform, cosineMarginHead, defineLoss, z } from '@fr/core';

export const subcenterArcfaceParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits'),
  m: z.number().min(0).max(Math.PI).default(0.5).describe('additive angular margin in radians'),
  k: z.number().int().min(1).default(3).describe('sub-centers per class'),
  gradient: z
    .enum(['detached', 'exact'])
    .default('detached')
    .describe('"detached": margin under no_grad (as @fr/arcface\'s default); "exact": classic th/mm form with the gradient through cos(theta + m)'),
});

export type SubcenterArcFaceParams = z.infer<typeof subcenterArcfaceParams>;

export const subcenterArcface = defineLoss({
  name: 'subcenter-arcface',
  description: 'Sub-center ArcFace: max cosine over K sub-centers per class, then the ArcFace margin (insightface SubCenter-ArcFace, pytorch-metric-learning)',
  params: subcenterArcfaceParams,
  createHead(ctx) {
    const p = ctx.params;
    const transform = arcMarginTransform(p.s, p.m, p.gradient);
    return cosineMarginHead(ctx, { name: 'subcenter-arcface', transform: () => transform, reducer: 'softmax-ce', subCenters: p.k });
  },
});

export default subcenterArcface;
