/**
 * @fr/subcenter-arcface: Sub-center ArcFace (Deng et al., ECCV 2020). Each class has K sub-centers;
 * a sample's cosine to a class is its largest cosine to the class's sub-centers, so noisy samples
 * gather around non-dominant sub-centers instead of pulling the dominant one. Then ArcFace:
 *
 *   cos[b, c] = max_k <x_b/|x_b|, w_{c,k}/|w_{c,k}|>     (gradient to every sub-center equal to the max)
 *   target logit s cos(theta + m), other logits s cos
 *
 * As the official SubCenter-ArcFace (insightface recognition/subcenter_arcface, MXNet
 * `get_symbol_arcface`): the target is arccos, + m, cos, differentiated, with no th/mm fallback
 * (cos(theta + m) also past theta + m = pi), and MXNet's max gives the gradient to every tied
 * sub-center. The class weights are one [C*K, D] matrix, sub-centers of class c in rows
 * c*K .. c*K + K - 1 (the official reshape to (B, C, K)): the head description's `subCenters`, which
 * core's `cosineMarginHead` reduces with `maxOverGroups`. `gradient: "detached"` is instead the
 * opensphere-style margin applied under no_grad (core's `arcMarginTransform`, as @fr/arcface's default).
 */
import { ANGULAR_WGSL, arcMarginTransform, clampUnit, cosineMarginHead, cosPlus, cosPlusSlope, defineLoss, defineTransform, z, type MarginTransform } from '@fr/core';

export const subcenterArcfaceParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits'),
  m: z.number().min(0).max(Math.PI).default(0.5).describe('additive angular margin in radians'),
  k: z.number().int().min(1).default(3).describe('sub-centers per class'),
  gradient: z
    .enum(['exact', 'detached'])
    .default('exact')
    .describe('"exact": the official SubCenter-ArcFace, cos(arccos(cos) + m) differentiated, no th/mm fallback; "detached": opensphere-style margin under no_grad (d logit / d cos = s)'),
});

export type SubcenterArcFaceParams = z.infer<typeof subcenterArcfaceParams>;

/**
 * The official target s cos(arccos(c) + m) with its exact slope, expanded as c cos m - sin(theta) sin m
 * (core's angular library: exact near |c| = 1, slope's sin(theta) floored at 1e-3 where the true one
 * diverges; c clamped to [-1, 1], where MXNet's arccos would give NaN). Other logits s cos, unclamped.
 */
export const officialArcTransform = (s: number, m: number): MarginTransform =>
  defineTransform({
    key: 'subcenter-arc-official',
    uniforms: { s, cos_m: Math.cos(m), sin_m: Math.sin(m) },
    target: (z, u) => u.s * cosPlus(clampUnit(z), u.cos_m, u.sin_m),
    targetGrad: (z, u) => u.s * cosPlusSlope(clampUnit(z), u.cos_m, u.sin_m),
    other: (z, u) => u.s * z,
    otherGrad: (_z, u) => u.s,
    otherLinear: { scale: s, lo: -Infinity, hi: Infinity, slope: s, slopeOutside: s },
    wgsl: ANGULAR_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * fr_cos_plus(clamp(z, -1.0, 1.0), u.cos_m, u.sin_m); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s * fr_cos_plus_slope(clamp(z, -1.0, 1.0), u.cos_m, u.sin_m); }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });

export const subcenterArcface = defineLoss({
  name: 'subcenter-arcface',
  description: 'Sub-center ArcFace: max cosine over K sub-centers per class, then the ArcFace margin with its exact gradient (insightface recognition/subcenter_arcface)',
  params: subcenterArcfaceParams,
  createHead(ctx) {
    const p = ctx.params;
    const transform = p.gradient === 'exact' ? officialArcTransform(p.s, p.m) : arcMarginTransform(p.s, p.m, 'detached');
    return cosineMarginHead(ctx, { name: 'subcenter-arcface', transform: () => transform, reducer: 'softmax-ce', subCenters: p.k });
  },
});

export default subcenterArcface;
