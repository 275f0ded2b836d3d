/**
 * @fr/arcface: additive angular margin (Deng et al., CVPR 2019). The target logit is
 * s * cos(theta + m). Two gradient rules:
 * - "detached" (default): as opensphere and current insightface, the margin is applied under
 *   no_grad, so d logit / d cos = s for every class;
 * - "exact": the classic th/mm form of the first insightface code, MultiFace and
 *   pytorch-metric-learning, differentiated through cos(theta + m).
 */
import { COS_CLAMP, clampedAcos, cosineMarginHead, defineLoss, defineTransform, THETA_MAX, z, type MarginTransform } from '@fr/core';

export const arcfaceParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits (feature norm on the hypersphere)'),
  m: z.number().min(0).max(Math.PI).default(0.5).describe('additive angular margin in radians'),
  gradient: z
    .enum(['detached', 'exact'])
    .default('detached')
    .describe('"detached": margin under no_grad (opensphere, insightface); "exact": classic th/mm form with the gradient through cos(theta + m)'),
});

export type ArcFaceParams = z.infer<typeof arcfaceParams>;

/**
 * 1 - cos^2 is clamped to this before the square root in the exact gradient: the true slope
 * diverges at |cos| = 1, the clamp keeps it finite (about s * sin(m) / 1e-3 there).
 */
export const SIN2_MIN = 1e-6;

/**
 * opensphere's form: theta = acos(clamp(cos)), target cos(clamp(theta + m, 1e-5, 3.14159)).
 * The WGSL half expands cos(theta + m) = c cos(m) - sqrt((1 - c)(1 + c)) sin(m): f32 acos is
 * coarse near |c| = 1 (software adapters lose ~1e-4 there), while (1 - c)(1 + c) is exact. The
 * lower clamp 1e-5 never binds for m >= 0 (theta >= acos(1 - 1e-5) = 0.0045).
 */
export function detachedArcTransform(s: number, m: number): MarginTransform {
  const lo = -1 + COS_CLAMP;
  const hi = 1 - COS_CLAMP;
  // Below this cosine theta + m passes 3.14159 and the logit is s cos(3.14159).
  const cMax = m >= THETA_MAX ? 2 : Math.cos(THETA_MAX - m);
  return defineTransform({
    key: 'arcface-detached',
    uniforms: { s, m, lo, hi, cos_m: Math.cos(m), sin_m: Math.sin(m), c_max: cMax, cos_max: Math.cos(THETA_MAX) },
    target: (z, u) => u.s * Math.cos(Math.min(Math.max(clampedAcos(z) + u.m, 1e-5), THETA_MAX)),
    targetGrad: (_z, u) => u.s,
    // cos(acos(clamp(z))) is clamp(z): opensphere applies the same no_grad rewrite to every class.
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

/**
 * Classic form: cos(theta + m) = cos*cos(m) - sin*sin(m) when cos > cos(pi - m) (theta + m < pi),
 * else cos - m*sin(m), which keeps the logit decreasing in theta. Exact gradient.
 */
export function exactArcTransform(s: number, m: number): MarginTransform {
  return defineTransform({
    key: 'arcface-exact',
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
  if (c > u.th) { return u.s * (c * u.cos_m - sqrt(max(1.0 - c * c, 0.0)) * u.sin_m); }
  return u.s * (c - u.mm);
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (c > u.th) { return u.s * (u.cos_m + c * u.sin_m / sqrt(max(1.0 - c * c, u.sin2_min))); }
  return u.s;
}
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, -1.0, 1.0); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });
}

/** The transform for a parameter set (used by higher-order losses such as MultiFace). */
export function arcfaceTransform(p: ArcFaceParams): MarginTransform {
  return p.gradient === 'exact' ? exactArcTransform(p.s, p.m) : detachedArcTransform(p.s, p.m);
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
