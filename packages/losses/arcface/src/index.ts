/**
 * @fr/arcface: additive angular margin (Deng et al., CVPR 2019). The target logit is
 * s * cos(theta + m). Two gradient rules, each as one official code:
 * - "detached" (default): as `ydwen/opensphere@a679e8203245` `model/head/arcface.py` (and current
 *   insightface), the margin is applied under no_grad, so d logit / d cos = s for every class;
 * - "exact": the classic th/mm form of `KikimorMay/MultiFace@4df7206ec7db` `model.py` `Arcface`
 *   (also the first insightface code and pytorch-metric-learning), differentiated through
 *   cos(theta + m).
 * Deliberate differences (README): both rules in one loss; class weights [C, D], N(0, 0.01),
 * normalised in the graph (opensphere renormalises them in place under no_grad); the exact slope
 * divides by sin(theta) floored at 1e-3 and is not cut to 0 outside [-1, 1]; on WebGPU the detached
 * cos(theta + m) is the expansion c cos m - sin(theta) sin m.
 */
import { arcMarginTransform, cosineMarginHead, defineLoss, z, type MarginTransform } from '@fr/core';

export const arcfaceParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits (feature norm on the hypersphere)'),
  m: z.number().min(0).max(Math.PI).default(0.5).describe('additive angular margin in radians'),
  gradient: z
    .enum(['detached', 'exact'])
    .default('detached')
    .describe('"detached": margin under no_grad (opensphere, insightface); "exact": classic th/mm form with the gradient through cos(theta + m)'),
});

export type ArcFaceParams = z.infer<typeof arcfaceParams>;

/** 1 - cos^2 is clamped to this in the exact slope (core's SIN2_MIN): it is finite at |cos| = 1. */
export { SIN2_MIN } from '@fr/core';

/** opensphere's detached form (core's `arcMarginTransform`): slope s for every class. */
export const detachedArcTransform = (s: number, m: number): MarginTransform => arcMarginTransform(s, m, 'detached');

/** The classic th/mm form with the exact gradient (core's `arcMarginTransform`). */
export const exactArcTransform = (s: number, m: number): MarginTransform => arcMarginTransform(s, m, 'exact');

/** The transform for a parameter set (used by higher-order losses such as MultiFace). */
export function arcfaceTransform(p: ArcFaceParams): MarginTransform {
  return arcMarginTransform(p.s, p.m, p.gradient);
}

export const arcface = defineLoss({
  name: 'arcface',
  description: 'ArcFace additive angular margin; detached as opensphere/insightface, or the classic exact form',
  params: arcfaceParams,
  createHead(ctx) {
    const transform = arcfaceTransform(ctx.params);
    return cosineMarginHead(ctx, { name: 'arcface', transform: () => transform, reducer: 'softmax-ce' });
  },
});

export default arcface;
