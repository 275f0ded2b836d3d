/**
 * @fr/x2softmax: X2-Softmax (Xu et al. 2023), as `xujiamu123/X2-Softmax@9899232cb316` `loss.py`
 * `X2Softmax` with `backbones.py` `my_CE_2`. The target logit is a quadratic in the angle,
 * s * (a (theta - h)^2 + k) with a < 0, so the effective margin grows with theta; other logits
 * are s * cos. The margin is applied without gradient (d logit / d cos = s), as the official code.
 * Deliberate differences (README): a clamp to [-1, 1] before acos, a must be negative, class
 * weights [C, D] initialised N(0, 0.01).
 */
import { defineLoss, defineTransform, cosineMarginHead, TRIG_WGSL, z, type MarginTransform } from '@fr/core';

export const x2softmaxParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits'),
  a: z.number().negative().default(-0.9).describe('curvature of the quadratic target logit (negative)'),
  h: z.number().default(0).describe('angle (radians) of the vertex of the quadratic'),
  k: z.number().default(0.65).describe('value of the quadratic at its vertex'),
});

export type X2SoftmaxParams = z.infer<typeof x2softmaxParams>;

/**
 * theta = acos(clamp(cos, -1, 1)): the official code calls acos on the raw cosine, which is NaN
 * when rounding puts it just outside [-1, 1]; the clamp changes no finite value. On the device, theta
 * comes from core's fr_acos: WGSL's own acos costs up to 0.07 of the golden tolerance at s = 64.
 */
export function x2softmaxTransform(p: X2SoftmaxParams): MarginTransform {
  return defineTransform({
    key: 'x2softmax',
    uniforms: { s: p.s, a: p.a, h: p.h, k: p.k },
    target(z, u) {
      const d = Math.acos(Math.min(Math.max(z, -1), 1)) - u.h;
      return u.s * (u.a * d * d + u.k);
    },
    targetGrad: (_z, u) => u.s,
    other: (z, u) => u.s * z,
    otherGrad: (_z, u) => u.s,
    otherLinear: { scale: p.s, lo: -Infinity, hi: Infinity, slope: p.s, slopeOutside: p.s },
    wgsl: TRIG_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  let d = fr_acos(clamp(z, -1.0, 1.0)) - u.h;
  return u.s * (u.a * d * d + u.k);
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });
}

export const x2softmax = defineLoss({
  name: 'x2softmax',
  description: 'X2-Softmax quadratic angular margin (xujiamu123/X2-Softmax), detached, with a clamp before acos',
  params: x2softmaxParams,
  createHead(ctx) {
    const transform = x2softmaxTransform(ctx.params);
    return cosineMarginHead(ctx, { name: 'x2softmax', transform: () => transform, reducer: 'softmax-ce' });
  },
});

export default x2softmax;
