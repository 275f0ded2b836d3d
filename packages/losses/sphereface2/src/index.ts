/**
 * @fr/sphereface2: SphereFace2 (Wen et al., ICLR 2022), as `ydwen/opensphere@032c31b`
 * `model/head/sphereface2.py`: binary one-vs-all classification instead of a softmax over classes.
 * Logits r g(.) + b with g(z) = 2((z + 1)/2)^t - 1 and one learnable scalar bias b;
 * loss = lw / r * mean over the batch of
 * [lambda softplus(-z_y) + (1 - lambda) sum_{j != y} softplus(z_j)]. Margin types:
 * C: g(cos) - m for the target, g(cos) + m for the others; A: g(cos(theta_y + m));
 * M: g(cos(m theta_y)). The margin is applied without gradient (d logit / d cos = r), as
 * the official code. At test time the score is the plain cosine. Deliberate differences (README):
 * `lambda` and `margin` name the official `alpha` and `magn_type`; class weights [C, D] initialised
 * N(0, 0.01) and normalised in the graph (the official code renormalises them in place under
 * no_grad); g clamps its base at 0; one class starts with bias 0 (the official formula divides by 0).
 */
import { COS_CLAMP, cosineMarginHead, defineLoss, defineTransform, THETA_MAX, TRIG_WGSL, z, type MarginTransform } from '@fr/core';

export const sphereface2Params = z.object({
  lambda: z.number().gt(0).lt(1).default(0.7).describe('weight of the positive term (1 - lambda for the negatives)'),
  r: z.number().positive().default(40).describe('radius (scale) of the logits'),
  m: z.number().min(0).default(0.4).describe('margin: additive on g(cos) for C, on theta for A, multiplicative for M'),
  t: z.number().positive().default(3).describe('exponent of the similarity adjustment g'),
  lw: z.number().positive().default(50).describe('loss weight (the released configs use 10)'),
  margin: z.enum(['C', 'A', 'M']).default('C').describe('margin type: C (cosine), A (additive angular), M (multiplicative angular)'),
});

export type SphereFace2Params = z.infer<typeof sphereface2Params>;

const g = (z: number, t: number) => 2 * Math.pow(Math.max((z + 1) / 2, 0), t) - 1;

/** The closed-form initial bias of the paper, which balances the two terms at initialisation. */
export function initialBias(p: SphereFace2Params, numClasses: number): number {
  // One class has no negatives to balance against: start unbiased.
  if (numClasses < 2) return 0;
  const zz = p.lambda / ((1 - p.lambda) * (numClasses - 1));
  const { r, m, t } = p;
  let ay: number;
  let ai: number;
  if (p.margin === 'C') {
    ay = r * (2 * 0.5 ** t - 1 - m);
    ai = r * (2 * 0.5 ** t - 1 + m);
  } else {
    const thetaY = Math.min(Math.PI, p.margin === 'A' ? Math.PI / 2 + m : (m * Math.PI) / 2);
    ay = r * (2 * ((Math.cos(thetaY) + 1) / 2) ** t - 1);
    ai = r * (2 * 0.5 ** t - 1);
  }
  const temp = (1 - zz) ** 2 + 4 * zz * Math.exp(ay - ai);
  return Math.log(2 * zz) - ai - Math.log(1 - zz + Math.sqrt(temp));
}

const G_WGSL = /* wgsl */ `
fn fr_g(z: f32) -> f32 { return 2.0 * pow(max((z + 1.0) * 0.5, 0.0), u.t) - 1.0; }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.r; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.r; }
`;

export function sphereface2Transform(p: SphereFace2Params): MarginTransform {
  const lo = -1 + COS_CLAMP;
  const hi = 1 - COS_CLAMP;
  const common = { targetGrad: (_z: number, u: Record<string, number>) => u.r, otherGrad: (_z: number, u: Record<string, number>) => u.r };
  if (p.margin === 'C') {
    return defineTransform({
      key: 'sphereface2-C',
      uniforms: { r: p.r, m: p.m, t: p.t },
      target: (z, u) => u.r * (g(z, u.t) - u.m),
      other: (z, u) => u.r * (g(z, u.t) + u.m),
      ...common,
      // r (2 ((z + 1) / 2)^t - 1 + m), for backends that run the non-target scores in closed form.
      otherPower: { scale: 2 * p.r, lo: -Infinity, hi: Infinity, inner: 0.5, shift: 0.5, power: p.t, offset: p.r * (p.m - 1), slope: p.r, slopeOutside: p.r },
      wgsl: G_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.r * (fr_g(z) - u.m); }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.r * (fr_g(z) + u.m); }
`,
    });
  }
  // A and M rewrite theta = acos(clamp(cos)) for every class; for the others that is clamp(cos).
  const angular = p.margin === 'A' ? (theta: number, m: number) => theta + m : (theta: number, m: number) => theta * m;
  return defineTransform({
    key: `sphereface2-${p.margin}`,
    uniforms: { r: p.r, m: p.m, t: p.t, lo, hi },
    target(z, u) {
      const theta = Math.acos(Math.min(Math.max(z, u.lo), u.hi));
      return u.r * g(Math.cos(Math.min(Math.max(angular(theta, u.m), 1e-5), THETA_MAX)), u.t);
    },
    other: (z, u) => u.r * g(Math.min(Math.max(z, u.lo), u.hi), u.t),
    ...common,
    otherPower: { scale: 2 * p.r, lo, hi, inner: 0.5, shift: 0.5, power: p.t, offset: -p.r, slope: p.r, slopeOutside: p.r },
    // acos and cos from core's fr_acos and fr_sin_cos: WGSL's own cost up to 0.014 of the tolerance.
    wgsl: G_WGSL + TRIG_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  let theta = fr_acos(clamp(z, u.lo, u.hi));
  return u.r * fr_g(fr_sin_cos(clamp(theta ${p.margin === 'A' ? '+' : '*'} u.m, 1e-5, ${THETA_MAX})).y);
}
fn fr_other(z: f32, row: FrRow) -> f32 { return u.r * fr_g(clamp(z, u.lo, u.hi)); }
`,
  });
}

export const sphereface2 = defineLoss({
  name: 'sphereface2',
  description: 'SphereFace2 one-vs-all binary loss with C/A/M margins and a learnable bias (opensphere sphereface2.py)',
  params: sphereface2Params,
  createHead(ctx) {
    const p = ctx.params;
    const transform = sphereface2Transform(p);
    return cosineMarginHead(ctx, {
      name: 'sphereface2',
      transform: () => transform,
      reducer: 'sigmoid-ova',
      positiveWeight: p.lambda,
      negativeWeight: 1 - p.lambda,
      scale: (batch) => p.lw / (p.r * batch),
      bias: initialBias(p, ctx.numClasses),
    });
  },
});

export default sphereface2;
