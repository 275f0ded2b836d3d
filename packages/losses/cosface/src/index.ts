/**
 * @fr/cosface: additive cosine margin (CosFace, Wang et al. CVPR 2018; AM-Softmax), as
 * `ydwen/opensphere@a679e8203245` `model/head/cosface.py`. The target logit is s * (cos - m),
 * every other logit s * cos. The margin is a constant shift, so the detached and exact gradients
 * coincide: d logit / d cos = s. Deliberate differences (README): class weights [C, D] initialised
 * N(0, 0.01) and normalised in the graph (the official code renormalises them in place under
 * no_grad before each forward).
 */
import { cosineMarginHead, defineLoss, defineTransform, z, type MarginTransform } from '@fr/core';

export const cosfaceParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits'),
  m: z.number().min(0).default(0.35).describe('additive cosine margin subtracted from the target cosine'),
});

export type CosFaceParams = z.infer<typeof cosfaceParams>;

/** s * (cos - m) for the target, s * cos otherwise (opensphere cosface.py). */
export function cosfaceTransform(p: CosFaceParams): MarginTransform {
  return defineTransform({
    key: 'cosface',
    uniforms: { s: p.s, m: p.m },
    target: (z, u) => u.s * (z - u.m),
    targetGrad: (_z, u) => u.s,
    other: (z, u) => u.s * z,
    otherGrad: (_z, u) => u.s,
    otherLinear: { scale: p.s, lo: -Infinity, hi: Infinity, slope: p.s, slopeOutside: p.s },
    wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * (z - u.m); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });
}

export const cosface = defineLoss({
  name: 'cosface',
  description: 'CosFace / AM-Softmax additive cosine margin, as opensphere cosface.py',
  params: cosfaceParams,
  createHead(ctx) {
    const transform = cosfaceTransform(ctx.params);
    return cosineMarginHead(ctx, { name: 'cosface', transform: () => transform, reducer: 'softmax-ce' });
  },
});

export default cosface;
