/**
 * @fr/subcenter-arcface: Sub-center ArcFace (Deng et al., ECCV 2020). Each class has K sub-centers;
 * a sample's cosine to a class is its largest cosine to the class's sub-centers, so noisy samples
 * gather around non-dominant sub-centers instead of pulling the dominant one. Then ArcFace:
 *
 *   cos[b, c] = max_k <x_b/|x_b|, w_{c,k}/|w_{c,k}|>     (gradient to the arg-max sub-center only)
 *   target logit s cos(theta + m), other logits s cos
 *
 * The class weights are one [C*K, D] matrix, sub-centers of class c in rows c*K .. c*K + K - 1
 * (the layout of insightface's reshape to (B, C, K) and of pytorch-metric-learning). The margin
 * follows @fr/arcface: "detached" (opensphere / current insightface form, margin under no_grad) or
 * "exact" (classic th/mm form, differentiated), so K = 1 is exactly @fr/arcface.
 */
import {
  classWeights,
  COS_CLAMP,
  clampedAcos,
  defineLoss,
  defineTransform,
  l2normalize,
  labelTensor,
  marginLoss,
  matmul,
  maxOverGroups,
  ShapeError,
  THETA_MAX,
  z,
  type MarginTransform,
  type NamedTensor,
} from '@fr/core';

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

/** 1 - cos^2 is clamped to this in the exact slope, which otherwise diverges at |cos| = 1. */
export const SIN2_MIN = 1e-6;

/**
 * Detached margin, opensphere's form: target s cos(clamp(acos(clamp(cos)) + m, 1e-5, 3.14159)),
 * others s clamp(cos); d logit / d cos = s. WGSL expands cos(theta + m) for f32 accuracy.
 */
export function detachedTransform(s: number, m: number): MarginTransform {
  const cMax = m >= THETA_MAX ? 2 : Math.cos(THETA_MAX - m);
  return defineTransform({
    key: 'subcenter-arcface-detached',
    uniforms: { s, m, lo: -1 + COS_CLAMP, hi: 1 - COS_CLAMP, cos_m: Math.cos(m), sin_m: Math.sin(m), c_max: cMax, cos_max: Math.cos(THETA_MAX) },
    target: (z, u) => u.s * Math.cos(Math.min(Math.max(clampedAcos(z) + u.m, 1e-5), THETA_MAX)),
    targetGrad: (_z, u) => u.s,
    other: (z, u) => u.s * Math.min(Math.max(z, u.lo), u.hi),
    otherGrad: (_z, u) => u.s,
    wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, u.lo, u.hi);
  if (c < u.c_max) { return u.s * u.cos_max; }
  return u.s * (c * u.cos_m - sqrt((1.0 - c) * (1.0 + c)) * u.sin_m);
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, u.lo, u.hi); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });
}

/** Classic form, exact: s cos(theta + m) when cos > cos(pi - m), else s (cos - m sin m). */
export function exactTransform(s: number, m: number): MarginTransform {
  return defineTransform({
    key: 'subcenter-arcface-exact',
    uniforms: { s, cos_m: Math.cos(m), sin_m: Math.sin(m), th: Math.cos(Math.PI - m), mm: Math.sin(m) * m, sin2_min: SIN2_MIN },
    target(z, u) {
      const c = Math.min(Math.max(z, -1), 1);
      if (c > u.th) return u.s * (c * u.cos_m - Math.sqrt(Math.max(1 - c * c, 0)) * u.sin_m);
      return u.s * (c - u.mm);
    },
    targetGrad(z, u) {
      const c = Math.min(Math.max(z, -1), 1);
      if (c > u.th) return u.s * (u.cos_m + (c * u.sin_m) / Math.sqrt(Math.max(1 - c * c, u.sin2_min)));
      return u.s;
    },
    other: (z, u) => u.s * Math.min(Math.max(z, -1), 1),
    otherGrad: (_z, u) => u.s,
    wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (c > u.th) { return u.s * (c * u.cos_m - sqrt(max((1.0 - c) * (1.0 + c), 0.0)) * u.sin_m); }
  return u.s * (c - u.mm);
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (c > u.th) { return u.s * (u.cos_m + c * u.sin_m / sqrt(max((1.0 - c) * (1.0 + c), u.sin2_min))); }
  return u.s;
}
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, -1.0, 1.0); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });
}

export const subcenterArcface = defineLoss({
  name: 'subcenter-arcface',
  description: 'Sub-center ArcFace: max cosine over K sub-centers per class, then the ArcFace margin (insightface SubCenter-ArcFace, pytorch-metric-learning)',
  params: subcenterArcfaceParams,
  createHead(ctx) {
    const p = ctx.params;
    // C*K rows of class weights, N(0, 0.01) like every classifier of the toolkit.
    const weight = classWeights({ ...ctx, numClasses: ctx.numClasses * p.k }, 'subcenter-arcface.weight');
    const transform = p.gradient === 'exact' ? exactTransform(p.s, p.m) : detachedTransform(p.s, p.m);
    const parameters: NamedTensor[] = [{ name: weight.name, tensor: weight }];
    return {
      parameters,
      buffers: [],
      forward(embeddings, labels) {
        if (embeddings.rank !== 2 || embeddings.shape[1] !== ctx.embeddingDim) {
          throw new ShapeError(`subcenter-arcface: embeddings must be [B, ${ctx.embeddingDim}], got ${embeddings.describe()}`);
        }
        const batch = embeddings.shape[0];
        const y = labelTensor(ctx.backend, labels, ctx.numClasses, 'subcenter-arcface labels');
        const subCos = matmul(l2normalize(embeddings), l2normalize(weight), { transB: true });
        const cos = maxOverGroups(subCos, p.k);
        return marginLoss(cos, y, { transform, reducer: 'softmax-ce', scale: 1 / batch });
      },
      dispose() {
        weight.dispose();
      },
    };
  },
});

export default subcenterArcface;
