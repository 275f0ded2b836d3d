/**
 * @fr/elasticface: ElasticFace (Boutros et al., CVPRW 2022): the margin of each sample is drawn
 * from N(m, sigma) at every step instead of being fixed. `base: "arcface"` gives ElasticArcFace,
 * target s cos(theta + m_b); `base: "cosface"` gives ElasticCosFace, target s (cos - m_b). The
 * official code differentiates through acos and cos, so the gradient is exact. The margins travel
 * to the fused kernel as the row context, so one compiled kernel serves every step.
 */
import { cosineMarginHead, defineLoss, defineTransform, tensor, z, type MarginTransform } from '@fr/core';

export const elasticfaceParams = z.object({
  base: z.enum(['arcface', 'cosface']).default('arcface').describe('ElasticArcFace (angular margin) or ElasticCosFace (cosine margin)'),
  s: z.number().positive().default(64).describe('scale of the logits'),
  m: z.number().optional().describe('mean margin; default 0.5 for arcface, 0.35 for cosface'),
  sigma: z.number().min(0).default(0.05).describe('standard deviation of the per-sample margin'),
});

export type ElasticFaceParams = z.infer<typeof elasticfaceParams>;

/** s cos(theta + m_b), m_b = row.context; slope s sin(theta + m_b) / sin(theta), sin clamped at 1e-3. */
export const elasticArcTransform = (s: number): MarginTransform =>
  defineTransform({
    key: 'elastic-arcface',
    uniforms: { s },
    target: (z, u, row) => u.s * Math.cos(Math.acos(Math.min(Math.max(z, -1), 1)) + row.context),
    targetGrad(z, u, row) {
      const c = Math.min(Math.max(z, -1), 1);
      return (u.s * Math.sin(Math.acos(c) + row.context)) / Math.sqrt(Math.max(1 - c * c, 1e-6));
    },
    other: (z, u) => u.s * Math.min(Math.max(z, -1), 1),
    otherGrad: (_z, u) => u.s,
    wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  let sin_t = sqrt(max((1.0 - c) * (1.0 + c), 0.0));
  return u.s * (c * cos(row.context) - sin_t * sin(row.context));
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  let sin_t = sqrt((1.0 - c) * (1.0 + c));
  // sin(theta + m) / sin(theta) = cos(m) + c sin(m) / sin(theta)
  return u.s * (cos(row.context) + c * sin(row.context) / max(sin_t, 1e-3));
}
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, -1.0, 1.0); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });

/** s (cos - m_b), m_b = row.context. */
export const elasticCosTransform = (s: number): MarginTransform =>
  defineTransform({
    key: 'elastic-cosface',
    uniforms: { s },
    target: (z, u, row) => u.s * (z - row.context),
    targetGrad: (_z, u) => u.s,
    other: (z, u) => u.s * z,
    otherGrad: (_z, u) => u.s,
    wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * (z - row.context); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
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
      // Fresh margins every forward, drawn on the host from the head's own generator.
      rowContext: (embeddings) => {
        const margins = Float32Array.from({ length: embeddings.shape[0] }, () => rng.normal(mean, p.sigma));
        return tensor(ctx.backend, margins, [margins.length], { name: 'elasticface.margins' });
      },
    });
  },
});

export default elasticface;
