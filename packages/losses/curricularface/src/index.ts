/**
 * @fr/curricularface: CurricularFace (Huang et al., CVPR 2020), as
 * `HuangYG123/CurricularFace@68c8727fb7cd` `head/metrics.py`. The target logit is ArcFace's
 * classic form; a non-target cosine that beats the target's margin cosine (a hard negative) is
 * re-weighted to cos (t + cos), where t is a running mean of the target cosines, so hard negatives
 * weigh more as training progresses. Exact gradient except through t and the hard mask, as the
 * official code. t lives on the device (`curricularface.t`) and reaches the kernel as row context,
 * read from the score matrix by the head description's `scoreContext`. Deliberate differences
 * (README): the slope's sin(theta) is clamped at 1e-3 where the official sqrt(1 - cos^2) has an
 * infinite derivative; the EMA rate of t is a parameter (`momentum`, official 0.01).
 */
import {
  ANGULAR_WGSL,
  clampUnit,
  cosPlus,
  thMm,
  thMmSlope,
  thMmUniforms,
  broadcastScalar,
  cosineMarginHead,
  defineLoss,
  defineTransform,
  gatherRows,
  reshape,
  sum,
  tensor,
  z,
  type MarginTransform,
  type RowContext,
  type Uniforms,
} from '@fr/core';

export const curricularfaceParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits'),
  m: z.number().min(0).default(0.5).describe('angular margin of the target'),
  momentum: z.number().gt(0).lte(1).default(0.01).describe('EMA rate of t, the running mean of target cosines'),
});

export type CurricularFaceParams = z.infer<typeof curricularfaceParams>;

/**
 * row.target is the row's target cosine, row.context the current t; the margin is core's th/mm form.
 * Cosines are clamped to [-1, 1] as the official code, and the clamp stops the gradient beyond
 * (only rounding gets there), as torch.clamp.
 */
export function curricularTransform(s: number, m: number): MarginTransform {
  // A non-target cosine above the target's margin cosine is hard.
  const threshold = (u: Uniforms, row: RowContext) => cosPlus(clampUnit(row.target), u.cos_m, u.sin_m);
  const hard = (z: number, u: Uniforms, row: RowContext) => clampUnit(z) > threshold(u, row);
  return defineTransform({
    key: 'curricularface',
    uniforms: { s, ...thMmUniforms(m) },
    target: (z, u) => u.s * thMm(z, u),
    targetGrad: (z, u) => (Math.abs(z) > 1 ? 0 : u.s * thMmSlope(z, u)),
    other(z, u, row) {
      const c = clampUnit(z);
      return u.s * (hard(z, u, row) ? c * (row.context + c) : c);
    },
    otherGrad: (z, u, row) => (Math.abs(z) > 1 ? 0 : u.s * (hard(z, u, row) ? row.context + 2 * z : 1)),
    // The same in closed form for backends that cannot call TypeScript per score (wasm SIMD).
    otherThreshold: { scale: s, lo: -1, hi: 1, slope: s, slopeOutside: 0, threshold },
    wgsl: ANGULAR_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * fr_th_mm(z, u.cos_m, u.sin_m, u.th, u.mm); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 {
  if (abs(z) > 1.0) { return 0.0; }
  return u.s * fr_th_mm_slope(z, u.cos_m, u.sin_m, u.th);
}
fn fr_hard(c: f32, row: FrRow) -> bool { return c > fr_cos_plus(clamp(row.target_z, -1.0, 1.0), u.cos_m, u.sin_m); }
fn fr_other(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (fr_hard(c, row)) { return u.s * c * (row.context + c); }
  return u.s * c;
}
fn fr_other_grad(z: f32, row: FrRow) -> f32 {
  if (abs(z) > 1.0) { return 0.0; }
  let c = z;
  if (fr_hard(c, row)) { return u.s * (row.context + 2.0 * c); }
  return u.s;
}
`,
  });
}

export const curricularface = defineLoss({
  name: 'curricularface',
  description: 'CurricularFace: ArcFace target, hard negatives re-weighted by a running target-cosine mean t (HuangYG123/CurricularFace)',
  params: curricularfaceParams,
  createHead(ctx) {
    const p = ctx.params;
    const t = tensor(ctx.backend, [0], [1], { name: 'curricularface.t' });
    const transform = curricularTransform(p.s, p.m);
    return cosineMarginHead(ctx, {
      name: 'curricularface',
      transform: () => transform,
      reducer: 'softmax-ce',
      // t <- (1 - momentum) t + momentum mean(target cos), on the device, before this step uses it.
      scoreContext(cos, labels) {
        const [B, C] = cos.shape;
        const index = tensor(ctx.backend, Int32Array.from(labels, (yb, b) => b * C + yb), [B], { dtype: 'int32' });
        const targetSum = sum(gatherRows(reshape(cos, [B * C, 1]), index));
        ctx.backend.kernels.axpby(t.buffer(), targetSum.buffer(), t.buffer(), 1, 1 - p.momentum, p.momentum / B);
        return broadcastScalar(t, [B], 1);
      },
      buffers: [{ name: t.name, tensor: t }],
    });
  },
});

export default curricularface;
