/**
 * @fr/adaface: AdaFace (Kim et al., CVPR 2022), as `mk-minchul/AdaFace@c60eaa786a42` `head.py`. The margin of
 * each sample follows its image quality, read from the feature norm relative to a running batch
 * mean and standard deviation:
 *
 *   scaler = clip((clip(|x|, 0.001, 100) - mean) / (std + eps) * h, -1, 1)     (norm detached)
 *   target logit s (cos(clip(theta - m scaler, eps, pi - eps)) - (m + m scaler))
 *   other logits s cos,  cos clamped to [-1 + eps, 1 - eps] everywhere, eps = 1e-3
 *
 * The gradient is exact through acos and cos, as the official code (no no_grad around the margin).
 * The running mean and std live on the device and are updated with the batch's statistics before
 * the step uses them; the per-row scaler reaches the fused kernel as the row context. Deliberate
 * differences (README): defaults from the official training setup (t_alpha 0.01 as config.py;
 * m 0.4, h 0.333 as its scripts), a batch of one is refused (its std is NaN).
 */
import {
  ANGULAR_WGSL,
  TRIG_WGSL,
  broadcastScalar,
  cosineMarginHead,
  defineLoss,
  defineTransform,
  empty,
  normsOf,
  ShapeError,
  tensor,
  z,
  type MarginTransform,
  type Tensor,
} from '@fr/core';

export const adafaceParams = z.object({
  s: z.number().positive().default(64).describe('scale of the logits'),
  m: z.number().min(0).default(0.4).describe('margin; the angular part is -m * scaler, the additive part m + m * scaler'),
  h: z.number().positive().default(0.333).describe('concentration: the normalised norm is multiplied by h before the clip to [-1, 1]'),
  t_alpha: z.number().gt(0).lte(1).default(0.01).describe('EMA rate of the running mean and std of the feature norms'),
});

export type AdaFaceParams = z.infer<typeof adafaceParams>;

/** Stability constant of the official code: cosine clamp, theta clip and the std guard. */
export const ADAFACE_EPS = 1e-3;
/** Initial running statistics of the official head (`batch_mean` 20, `batch_std` 100). */
export const INITIAL_MEAN = 20;
export const INITIAL_STD = 100;
/** Bounds of the feature norm before its statistics are taken. */
export const NORM_MIN = 0.001;
export const NORM_MAX = 100;

const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/**
 * The AdaFace transform; `row.context` is the row's margin scaler in [-1, 1].
 * The WGSL half expands cos(theta - a) with core's angular library (cos(theta + m) at m = -a,
 * sin(theta) from (1 - c)(1 + c)): f32 acos is coarse near |c| = 1, the product is not. sin a and
 * cos a come from core's fr_sin_cos, as a is per row and WGSL's own sin and cos are coarse
 * (cos(pi - eps + a) = -cos(eps - a)). The theta clip binds
 * exactly when c > cos(a + eps) (theta - a < eps) or c < cos(pi - eps + a) (theta - a > pi - eps).
 */
export function adafaceTransform(s: number, m: number): MarginTransform {
  const eps = ADAFACE_EPS;
  return defineTransform({
    key: 'adaface',
    uniforms: { s, m, eps, lo: -1 + eps, hi: 1 - eps, cos_eps: Math.cos(eps) },
    target(z, u, row) {
      const theta = Math.acos(clamp(z, u.lo, u.hi));
      const thetaM = clamp(theta - u.m * row.context, u.eps, Math.PI - u.eps);
      return u.s * (Math.cos(thetaM) - (u.m + u.m * row.context));
    },
    targetGrad(z, u, row) {
      // torch's clamp/clip pass the gradient at their bounds, and stop it beyond them.
      if (z < u.lo || z > u.hi) return 0;
      const theta = Math.acos(z);
      const shifted = theta - u.m * row.context;
      if (shifted < u.eps || shifted > Math.PI - u.eps) return 0;
      return (u.s * Math.sin(shifted)) / Math.sin(theta);
    },
    other: (z, u) => u.s * clamp(z, u.lo, u.hi),
    otherGrad: (z, u) => (z < u.lo || z > u.hi ? 0 : u.s),
    otherLinear: { scale: s, lo: -1 + eps, hi: 1 - eps, slope: s, slopeOutside: 0 },
    wgsl: ANGULAR_WGSL + TRIG_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, u.lo, u.hi);
  let a = u.m * row.context;
  var cm: f32;
  if (a + u.eps > 0.0 && c > fr_sin_cos(a + u.eps).y) {
    cm = u.cos_eps;
  } else if (a < u.eps && c < -fr_sin_cos(u.eps - a).y) {
    cm = -u.cos_eps;
  } else {
    let sc = fr_sin_cos(a);
    cm = fr_cos_plus(c, sc.y, -sc.x);
  }
  return u.s * (cm - (u.m + a));
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 {
  if (z < u.lo || z > u.hi) { return 0.0; }
  let a = u.m * row.context;
  if (a + u.eps > 0.0 && z > fr_sin_cos(a + u.eps).y) { return 0.0; }
  if (a < u.eps && z < -fr_sin_cos(u.eps - a).y) { return 0.0; }
  // sin(theta - a) / sin(theta); sin(theta) >= 0.0447 here, so the library's 1e-3 floor never binds.
  let sc = fr_sin_cos(a);
  return u.s * fr_cos_plus_slope(z, sc.y, -sc.x);
}
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, u.lo, u.hi); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return select(u.s, 0.0, z < u.lo || z > u.hi); }
`,
  });
}

export const adaface = defineLoss({
  name: 'adaface',
  description: 'AdaFace: feature-norm adaptive margin (angular and additive) with running norm statistics (mk-minchul/AdaFace), exact gradient',
  params: adafaceParams,
  createHead(ctx) {
    const p = ctx.params;
    const be = ctx.backend;
    const k = be.kernels;
    const mean = tensor(be, [INITIAL_MEAN], [1], { name: 'adaface.batch_mean' });
    const std = tensor(be, [INITIAL_STD], [1], { name: 'adaface.batch_std' });
    const transform = adafaceTransform(p.s, p.m);
    // Kernels straight on buffers: nothing here is differentiated (the norms are detached).
    const clip = (x: Tensor, lo: number, hi: number): Tensor => {
      const bound = empty(be, x.shape);
      const out = empty(be, x.shape);
      k.fill(bound.buffer(), x.size, lo);
      k.binary('max', x.buffer(), bound.buffer(), out.buffer(), x.size);
      k.fill(bound.buffer(), x.size, hi);
      k.binary('min', out.buffer(), bound.buffer(), out.buffer(), x.size);
      return out;
    };
    const scalerOf = (normalized: Tensor): Tensor => {
      const B = normalized.shape[0];
      if (B < 2) throw new ShapeError(`adaface: a batch of ${B} has no standard deviation (the official torch.std is NaN there); use batches of 2 or more`);
      const safe = clip(normsOf(normalized), NORM_MIN, NORM_MAX);
      // Batch mean and unbiased std (torch.std), then the EMA, all on the device.
      const batchMean = empty(be, [1]);
      k.reduceSum(safe.buffer(), batchMean.buffer(), 1, B, 1);
      k.affine(batchMean.buffer(), batchMean.buffer(), 1, 1 / B, 0);
      const centered = empty(be, [B]);
      k.axpby(safe.buffer(), broadcastScalar(batchMean, [B], 1).buffer(), centered.buffer(), B, 1, -1);
      const batchStd = empty(be, [1]);
      k.sumSquares(centered.buffer(), batchStd.buffer(), B);
      k.affine(batchStd.buffer(), batchStd.buffer(), 1, 1 / (B - 1), 0);
      k.unary('sqrt', batchStd.buffer(), batchStd.buffer(), 1);
      k.axpby(mean.buffer(), batchMean.buffer(), mean.buffer(), 1, 1 - p.t_alpha, p.t_alpha);
      k.axpby(std.buffer(), batchStd.buffer(), std.buffer(), 1, 1 - p.t_alpha, p.t_alpha);
      // scaler = clip((safe - mean) / (std + eps) * h, -1, 1)
      const diff = empty(be, [B]);
      k.axpby(safe.buffer(), broadcastScalar(mean, [B], 1).buffer(), diff.buffer(), B, 1, -1);
      const denom = empty(be, [1]);
      k.affine(std.buffer(), denom.buffer(), 1, 1, ADAFACE_EPS);
      k.binary('div', diff.buffer(), broadcastScalar(denom, [B], 1).buffer(), diff.buffer(), B);
      k.affine(diff.buffer(), diff.buffer(), B, p.h, 0);
      return clip(diff, -1, 1);
    };
    return cosineMarginHead(ctx, {
      name: 'adaface',
      transform: () => transform,
      reducer: 'softmax-ce',
      rowContext: (_embeddings, normalized) => scalerOf(normalized),
      buffers: [
        { name: mean.name, tensor: mean },
        { name: std.name, tensor: std },
      ],
    });
  },
});

export default adaface;
