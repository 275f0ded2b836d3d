/**
 * @fr/elasticface: ElasticFace (Boutros et al., CVPRW 2022), as `fdbtrs/ElasticFace@5496ec0643bf`
 * `utils/losses.py` (ElasticArcFace, ElasticCosFace, plus=False): the margin of each sample is drawn
 * from N(m, sigma) at every step instead of being fixed. `base: "arcface"` gives ElasticArcFace,
 * target s cos(theta + m_b); `base: "cosface"` gives ElasticCosFace, target s (cos - m_b). The
 * official code differentiates through acos and cos, so the gradient is exact. The margins travel
 * to the fused kernel as the row context, so one compiled kernel serves every step. A caller may
 * give the margins of a step (`head.forward(x, labels, { margins })`, core's `HeadInputs`): the head
 * then uses them instead of its draws, so a step can be replayed or checked against reference numbers. Deliberate
 * differences (README): the arc slope's sin(theta) is clamped at 1e-3 (the official acos has an
 * infinite slope at |cos| = 1); the "+" variant is not included.
 */
import { ANGULAR_WGSL, TRIG_WGSL, clampUnit, cosPlus, cosPlusSlope, cosineMarginHead, defineLoss, defineTransform, ShapeError, tensor, z, type MarginTransform } from '@fr/core';

export const elasticfaceParams = z.object({
  base: z.enum(['arcface', 'cosface']).default('arcface').describe('ElasticArcFace (angular margin) or ElasticCosFace (cosine margin)'),
  s: z.number().positive().default(64).describe('scale of the logits'),
  m: z.number().optional().describe('mean margin; default 0.5 for arcface, 0.35 for cosface'),
  sigma: z.number().min(0).default(0.05).describe('standard deviation of the per-sample margin'),
});

export type ElasticFaceParams = z.infer<typeof elasticfaceParams>;

/**
 * s cos(theta + m_b), m_b = row.context, exact gradient (core's angular library; the slope's
 * sin(theta) clamped at 1e-3). The cosine is clamped to [-1, 1] first, as the official code, and
 * the clamp's gradient is torch's: zero where |cos| > 1 (only rounding gets there).
 */
export const elasticArcTransform = (s: number): MarginTransform =>
  defineTransform({
    key: 'elastic-arcface',
    uniforms: { s },
    target: (z, u, row) => u.s * cosPlus(clampUnit(z), Math.cos(row.context), Math.sin(row.context)),
    targetGrad: (z, u, row) => (Math.abs(z) > 1 ? 0 : u.s * cosPlusSlope(z, Math.cos(row.context), Math.sin(row.context))),
    other: (z, u) => u.s * clampUnit(z),
    otherGrad: (z, u) => (Math.abs(z) > 1 ? 0 : u.s),
    otherLinear: { scale: s, lo: -1, hi: 1, slope: s, slopeOutside: 0 },
    // The margin is per row, so its sin and cos come from core's fr_sin_cos (WGSL's own are coarse).
    wgsl: ANGULAR_WGSL + TRIG_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  let sc = fr_sin_cos(row.context);
  return u.s * fr_cos_plus(clamp(z, -1.0, 1.0), sc.y, sc.x);
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 {
  if (abs(z) > 1.0) { return 0.0; }
  let sc = fr_sin_cos(row.context);
  return u.s * fr_cos_plus_slope(z, sc.y, sc.x);
}
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, -1.0, 1.0); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return select(u.s, 0.0, abs(z) > 1.0); }
`,
  });

/** d clamp(z, -1, 1) / dz as torch.clamp: 1 inside [-1, 1], bounds included, 0 outside. */
const clampUnitSlope = (z: number): number => (z >= -1 && z <= 1 ? 1 : 0);

/** s (clamp(cos, -1, 1) - m_b), m_b = row.context; the official ElasticCosFace clamps every cosine. */
export const elasticCosTransform = (s: number): MarginTransform =>
  defineTransform({
    key: 'elastic-cosface',
    uniforms: { s },
    target: (z, u, row) => u.s * (clampUnit(z) - row.context),
    targetGrad: (z, u) => u.s * clampUnitSlope(z),
    other: (z, u) => u.s * clampUnit(z),
    otherGrad: (z, u) => u.s * clampUnitSlope(z),
    otherLinear: { scale: s, lo: -1, hi: 1, slope: s, slopeOutside: 0 },
    wgsl: /* wgsl */ `
fn fr_clamp_slope(z: f32) -> f32 { return select(0.0, 1.0, z >= -1.0 && z <= 1.0); }
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * (clamp(z, -1.0, 1.0) - row.context); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s * fr_clamp_slope(z); }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, -1.0, 1.0); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s * fr_clamp_slope(z); }
`,
  });

export const elasticface = defineLoss({
  name: 'elasticface',
  description: 'ElasticFace: per-sample margin drawn from N(m, sigma) for ArcFace or CosFace (fdbtrs/ElasticFace), exact gradient',
  params: elasticfaceParams,
  createHead(ctx) {
    const p = ctx.params;
    const mean = p.m ?? (p.base === 'arcface' ? 0.5 : 0.35);
    const transform = p.base === 'arcface' ? elasticArcTransform(p.s) : elasticCosTransform(p.s);
    const rng = ctx.rng.fork();
    return cosineMarginHead(ctx, {
      name: 'elasticface',
      transform: () => transform,
      reducer: 'softmax-ce',
      takes: ['margins'],
      // Fresh margins every forward, drawn on the host from the head's own generator, unless given.
      rowContext: (embeddings, _normalized, inputs) => {
        const rows = embeddings.shape[0];
        const given = inputs?.margins;
        if (given && given.length !== rows) throw new ShapeError(`elasticface: ${given.length} margins given for a batch of ${rows}`);
        const margins = given ? Float32Array.from(given) : Float32Array.from({ length: rows }, () => rng.normal(mean, p.sigma));
        return tensor(ctx.backend, margins, [rows], { name: 'elasticface.margins' });
      },
    });
  },
});

export default elasticface;
