/**
 * @fr/curricularface: CurricularFace (Huang et al., CVPR 2020). The target logit is ArcFace's
 * classic form; a non-target cosine that beats the target's margin cosine (a hard negative) is
 * re-weighted to cos (t + cos), where t is a running mean of the target cosines, so hard negatives
 * weigh more as training progresses. Exact gradient except through t and the hard mask, as the
 * official code. t lives on the device (`curricularface.t`) and reaches the kernel as row context.
 */
import {
  broadcastScalar,
  classWeights,
  defineLoss,
  defineTransform,
  gatherRows,
  l2normalize,
  labelTensor,
  marginLoss,
  matmul,
  noGrad,
  reshape,
  ShapeError,
  sum,
  tensor,
  z,
  type MarginTransform,
  type NamedTensor,
} from '@fr/core';

export const curricularfaceParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits'),
  m: z.number().min(0).default(0.5).describe('angular margin of the target'),
  momentum: z.number().gt(0).lte(1).default(0.01).describe('EMA rate of t, the running mean of target cosines'),
});

export type CurricularFaceParams = z.infer<typeof curricularfaceParams>;

/** row.target is the row's target cosine, row.context the current t. */
export function curricularTransform(s: number, m: number): MarginTransform {
  const u0 = { s, cos_m: Math.cos(m), sin_m: Math.sin(m), th: Math.cos(Math.PI - m), mm: Math.sin(m) * m };
  const marginCos = (c: number, u: Record<string, number>) => c * u.cos_m - Math.sqrt(Math.max(1 - c * c, 0)) * u.sin_m;
  const clamp = (z: number) => Math.min(Math.max(z, -1), 1);
  return defineTransform({
    key: 'curricularface',
    uniforms: u0,
    target(z, u) {
      const c = clamp(z);
      return u.s * (c > u.th ? marginCos(c, u) : c - u.mm);
    },
    targetGrad(z, u) {
      const c = clamp(z);
      return c > u.th ? u.s * (u.cos_m + (c * u.sin_m) / Math.sqrt(Math.max(1 - c * c, 1e-6))) : u.s;
    },
    other(z, u, row) {
      const c = clamp(z);
      return u.s * (c > marginCos(clamp(row.target), u) ? c * (row.context + c) : c);
    },
    otherGrad(z, u, row) {
      const c = clamp(z);
      return u.s * (c > marginCos(clamp(row.target), u) ? row.context + 2 * c : 1);
    },
    wgsl: /* wgsl */ `
fn fr_margin_cos(c: f32) -> f32 { return c * u.cos_m - sqrt(max((1.0 - c) * (1.0 + c), 0.0)) * u.sin_m; }
fn fr_target(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (c > u.th) { return u.s * fr_margin_cos(c); }
  return u.s * (c - u.mm);
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (c > u.th) { return u.s * (u.cos_m + c * u.sin_m / sqrt(max((1.0 - c) * (1.0 + c), 1e-6))); }
  return u.s;
}
fn fr_other(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (c > fr_margin_cos(clamp(row.target_z, -1.0, 1.0))) { return u.s * c * (row.context + c); }
  return u.s * c;
}
fn fr_other_grad(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (c > fr_margin_cos(clamp(row.target_z, -1.0, 1.0))) { return u.s * (row.context + 2.0 * c); }
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
    const weight = classWeights(ctx, 'curricularface.weight');
    const t = tensor(ctx.backend, [0], [1], { name: 'curricularface.t' });
    const transform = curricularTransform(p.s, p.m);
    const parameters: NamedTensor[] = [{ name: weight.name, tensor: weight }];
    const k = ctx.backend.kernels;
    return {
      parameters,
      buffers: [{ name: t.name, tensor: t }],
      forward(embeddings, labels) {
        if (embeddings.rank !== 2 || embeddings.shape[1] !== ctx.embeddingDim) {
          throw new ShapeError(`curricularface: embeddings must be [B, ${ctx.embeddingDim}], got ${embeddings.describe()}`);
        }
        const B = embeddings.shape[0];
        const C = ctx.numClasses;
        const y = labelTensor(ctx.backend, labels, C, 'curricularface labels');
        const cos = matmul(l2normalize(embeddings), l2normalize(weight), { transB: true });
        // t <- (1 - momentum) t + momentum mean(target cos), on the device, before this step uses it.
        const context = noGrad(() => {
          const index = tensor(ctx.backend, Int32Array.from(labels, (yb, b) => b * C + yb), [B], { dtype: 'int32' });
          const targetSum = sum(gatherRows(reshape(cos, [B * C, 1]), index));
          k.axpby(t.buffer(), targetSum.buffer(), t.buffer(), 1, 1 - p.momentum, p.momentum / B);
          return broadcastScalar(t, [B], 1);
        });
        return marginLoss(cos, y, { transform, reducer: 'softmax-ce', scale: 1 / B, rowContext: context });
      },
      dispose() {
        weight.dispose();
        t.dispose();
      },
    };
  },
});

export default curricularface;
