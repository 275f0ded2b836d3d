/**
 * @fr/magface: MagFace (Meng et al., CVPR 2021), as `IrvingMeng/MagFace@99bae614ac26`
 * `models/magface.py` (MagLinear + MagLoss, combined as run/trainer.py does). The feature
 * magnitude a = clamp(|x|, l_a, u_a) sets an ArcFace margin that grows linearly with it, and a
 * regulariser rewards large magnitudes:
 *
 *   m(a) = (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m
 *   target logit s cos(theta + m(a)) if cos > 0 else s cos        (easy margin, the official default)
 *   other logits s cos
 *   loss = CE + lambda_g * mean_b (1/a + a / u_a^2)
 *
 * Nothing is detached, as in the official code: the gradient reaches |x| through the margin (the
 * fused kernel's row-context gradient) and through the regulariser; the clamp passes it at the
 * bounds, as torch.clamp. Deliberate differences (README): the slopes clamp (1 - cos)(1 + cos) at
 * 1e-6 where the official sqrt(1 - cos^2) has an infinite derivative; lambda_g is a loss parameter.
 */
import {
  cosineMarginHead,
  ANGULAR_WGSL,
  TRIG_WGSL,
  clampUnit,
  cosPlus,
  cosPlusSlope,
  sinPlus,
  add,
  defineLoss,
  defineTransform,
  empty,
  affine,
  mean,
  record,
  sumAxis,
  unary,
  z,
  type MarginTransform,
  type Tensor,
} from '@fr/core';

/** 1 - cos^2 is clamped to this in the slopes (core's SIN2_MIN), which the official sqrt makes infinite at |cos| = 1. */
export { SIN2_MIN } from '@fr/core';

export const magfaceParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits'),
  l_a: z.number().positive().default(10).describe('lower bound of the feature magnitude'),
  u_a: z.number().positive().default(110).describe('upper bound of the feature magnitude'),
  l_m: z.number().min(0).default(0.45).describe('margin at magnitude l_a'),
  u_m: z.number().min(0).default(0.8).describe('margin at magnitude u_a'),
  // 35 as the official run/run.sh (lg=35); run/trainer.py's argparse says 20, below the min_lambda it warns about.
  lambda_g: z.number().min(0).default(35).describe('weight of the magnitude regulariser g(a) = 1/a + a/u_a^2 (35: official run/run.sh)'),
  easy_margin: z
    .boolean()
    .default(true)
    .describe('true (official MagLinear default): no margin where cos <= 0; false: classic th/mm form, cos - m sin m below cos(pi - m)'),
}).refine((p) => p.u_a > p.l_a, { message: 'u_a must be greater than l_a', path: ['u_a'] });

export type MagFaceParams = z.infer<typeof magfaceParams>;

/**
 * ArcFace with the margin of each row in `row.context`, differentiable in it (contextGradient),
 * from core's angular library. Easy margin: cos(theta + m) where cos > 0, else cos. Otherwise the
 * classic th/mm form. The cosine is clamped to [-1, 1] as the official code, and the clamp stops
 * the gradient in the score beyond (only rounding gets there), as torch.clamp.
 */
export function magfaceTransform(s: number, easyMargin: boolean): MarginTransform {
  const onMargin = (c: number, m: number) => (easyMargin ? c > 0 : c > Math.cos(Math.PI - m));
  return defineTransform({
    key: easyMargin ? 'magface-easy' : 'magface',
    uniforms: { s },
    contextGradient: true,
    target(z, u, row) {
      const c = clampUnit(z), m = row.context;
      if (onMargin(c, m)) return u.s * cosPlus(c, Math.cos(m), Math.sin(m));
      return easyMargin ? u.s * c : u.s * (c - Math.sin(m) * m);
    },
    targetGrad(z, u, row) {
      const c = z, m = row.context;
      if (Math.abs(c) > 1) return 0;
      return onMargin(c, m) ? u.s * cosPlusSlope(c, Math.cos(m), Math.sin(m)) : u.s;
    },
    targetContextGrad(z, u, row) {
      const c = clampUnit(z), m = row.context;
      if (onMargin(c, m)) return -u.s * sinPlus(c, Math.cos(m), Math.sin(m));
      return easyMargin ? 0 : -u.s * (Math.sin(m) + m * Math.cos(m));
    },
    other: (z, u) => u.s * clampUnit(z),
    otherGrad: (z, u) => (Math.abs(z) > 1 ? 0 : u.s),
    otherLinear: { scale: s, lo: -1, hi: 1, slope: s, slopeOutside: 0 },
    otherContextGrad: () => 0,
    // The margin is per row, so its sin and cos come from core's fr_sin_cos (WGSL's own are coarse);
    // cos(pi - m) = -cos m.
    wgsl: ANGULAR_WGSL + TRIG_WGSL + /* wgsl */ `
fn fr_on_margin(c: f32, cos_m: f32) -> bool {
  ${easyMargin ? 'return c > 0.0;' : 'return c > -cos_m;'}
}
fn fr_target(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  let m = row.context;
  let sc = fr_sin_cos(m);
  if (fr_on_margin(c, sc.y)) { return u.s * fr_cos_plus(c, sc.y, sc.x); }
  return ${easyMargin ? 'u.s * c' : 'u.s * (c - sc.x * m)'};
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 {
  if (abs(z) > 1.0) { return 0.0; }
  let c = z;
  let sc = fr_sin_cos(row.context);
  if (fr_on_margin(c, sc.y)) { return u.s * fr_cos_plus_slope(c, sc.y, sc.x); }
  return u.s;
}
fn fr_target_context_grad(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  let m = row.context;
  let sc = fr_sin_cos(m);
  if (fr_on_margin(c, sc.y)) { return -u.s * fr_sin_plus(c, sc.y, sc.x); }
  return ${easyMargin ? '0.0' : '-u.s * (sc.x + m * sc.y)'};
}
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, -1.0, 1.0); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return select(u.s, 0.0, abs(z) > 1.0); }
fn fr_other_context_grad(z: f32, row: FrRow) -> f32 { return 0.0; }
`,
  });
}

/**
 * clamp(a, lo, hi) with torch.clamp's gradient: passed where lo <= a <= hi (the bounds included),
 * zero strictly outside. A magnitude exactly at l_a or u_a keeps its gradient, as in the official code.
 */
export function clampOp(a: Tensor, lo: number, hi: number): Tensor {
  const k = a.backend.kernels;
  const n = a.size;
  const bound = empty(a.backend, a.shape);
  const out = empty(a.backend, a.shape);
  k.fill(bound.buffer(), n, lo);
  k.binary('max', a.buffer(), bound.buffer(), out.buffer(), n);
  k.fill(bound.buffer(), n, hi);
  k.binary('min', out.buffer(), bound.buffer(), out.buffer(), n);
  return record(out, 'clamp', [a], (g) => {
    // reluBackward(g, v) keeps g where v > 0, so it picks out the rows strictly outside: lo - a > 0
    // (a < lo) and a - hi > 0 (a > hi); those are taken from g. An f32 difference is 0 only at equality.
    const excess = empty(a.backend, a.shape);
    const outside = empty(a.backend, a.shape);
    const d = empty(a.backend, a.shape);
    k.affine(a.buffer(), excess.buffer(), n, -1, Math.fround(lo));
    k.binary('reluBackward', g.buffer(), excess.buffer(), outside.buffer(), n);
    k.binary('sub', g.buffer(), outside.buffer(), d.buffer(), n);
    k.affine(a.buffer(), excess.buffer(), n, 1, -Math.fround(hi));
    k.binary('reluBackward', g.buffer(), excess.buffer(), outside.buffer(), n);
    k.binary('sub', d.buffer(), outside.buffer(), d.buffer(), n);
    return [d];
  });
}

/** 1 / a elementwise; d/da = -1/a^2. */
export function reciprocal(a: Tensor): Tensor {
  const k = a.backend.kernels;
  const n = a.size;
  const ones = empty(a.backend, a.shape);
  k.fill(ones.buffer(), n, 1);
  const out = empty(a.backend, a.shape);
  k.binary('div', ones.buffer(), a.buffer(), out.buffer(), n);
  return record(out, 'reciprocal', [a], (g) => {
    const d = empty(a.backend, a.shape);
    k.binary('mul', out.buffer(), out.buffer(), d.buffer(), n);
    k.binary('mul', g.buffer(), d.buffer(), d.buffer(), n);
    k.affine(d.buffer(), d.buffer(), n, -1, 0);
    return [d];
  });
}

export const magface = defineLoss({
  name: 'magface',
  description: 'MagFace: ArcFace margin growing with the feature magnitude, plus a magnitude regulariser (IrvingMeng/MagFace), gradient through the magnitude',
  params: magfaceParams,
  createHead(ctx) {
    const p = ctx.params;
    const transform = magfaceTransform(p.s, p.easy_margin);
    const slope = (p.u_m - p.l_m) / (p.u_a - p.l_a);
    // The magnitude of this step's forward, made by rowContext and read by extraLoss (one tape node for both).
    let magnitude: Tensor | null = null;
    return cosineMarginHead(ctx, {
      name: 'magface',
      transform: () => transform,
      reducer: 'softmax-ce',
      // Recorded ops, so the gradient reaches the embeddings through the margin.
      rowContext(embeddings) {
        magnitude = clampOp(unary('sqrt', sumAxis(unary('square', embeddings), 1)), p.l_a, p.u_a);
        return affine(magnitude, slope, p.l_m - slope * p.l_a);
      },
      extraLoss() {
        const a = magnitude!;
        magnitude = null;
        return affine(mean(add(reciprocal(a), affine(a, 1 / (p.u_a * p.u_a), 0))), p.lambda_g, 0);
      },
    });
  },
});

export default magface;
