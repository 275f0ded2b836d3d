/**
 * @fr/sphereface: multiplicative angular margin (Liu et al., CVPR 2017).
 *
 * - variant "opensphere" (default): SphereFace as revived in `ydwen/opensphere@a679e8203245`
 *   `model/head/sphereface.py`: features normalised, target logit s * psi(theta),
 *   psi = (-1)^k cos(m theta) - 2k, k = floor(m theta / pi), applied without gradient
 *   (d logit / d cos = s). Non-integer m allowed; default s 30, m 1.7.
 * - variant "a-softmax": the original A-Softmax, after the paper (an addition, not in opensphere):
 *   features not normalised, integer m (default 4), target logit |x| (lambda cos + psi) / (1 + lambda)
 *   with lambda annealed as max(lambdaMin, base (1 + gamma iteration)^-power), exact gradient
 *   through psi except the part through |x|.
 * Deliberate differences from opensphere (README): default m 1.7 (its MS1M config; the class says
 * 1.5), m >= 1, class weights [C, D] initialised N(0, 0.01) and normalised in the graph (opensphere
 * renormalises them in place under no_grad).
 */
import {
  assertEmbeddings,
  COS_CLAMP,
  clampedAcos,
  cosineMarginHead,
  defineLoss,
  defineTransform,
  l2normalize,
  labelTensor,
  marginLoss,
  matmul,
  normsOf,
  ShapeError,
  classWeights,
  z,
  type HeadContext,
  type LossHead,
  type MarginTransform,
  type NamedTensor,
  TRIG_WGSL,
} from '@fr/core';

const opensphereParams = z.object({
  variant: z.literal('opensphere').describe('SphereFace revived (opensphere): normalised features, detached margin'),
  s: z.number().positive().default(30).describe('scale of the logits'),
  m: z.number().min(1).default(1.7).describe('multiplicative angular margin (theta -> m theta)'),
});

const aSoftmaxParams = z.object({
  variant: z.literal('a-softmax').describe('the original A-Softmax: raw features, integer m, lambda annealing'),
  m: z.number().int().min(1).default(4).describe('integer multiplicative margin'),
  base: z.number().positive().default(1000).describe('initial lambda of the annealing'),
  gamma: z.number().nonnegative().default(0.12).describe('annealing rate'),
  power: z.number().nonnegative().default(1).describe('annealing power'),
  lambdaMin: z.number().nonnegative().default(5).describe('floor of lambda'),
  startIteration: z.number().int().nonnegative().default(0).describe('iteration the annealing starts from (set it when resuming)'),
});

export const spherefaceParams = z.preprocess(
  (v) => (v && typeof v === 'object' && !('variant' in v) ? { ...v, variant: 'opensphere' } : v),
  z.discriminatedUnion('variant', [opensphereParams, aSoftmaxParams]),
);

export type SphereFaceParams = z.infer<typeof spherefaceParams>;

/** opensphere's psi: theta from the clamped cosine, no clamp of m theta. */
export function spherefaceTransform(s: number, m: number): MarginTransform {
  const lo = -1 + COS_CLAMP;
  const hi = 1 - COS_CLAMP;
  return defineTransform({
    key: 'sphereface',
    uniforms: { s, m, lo, hi },
    target(z, u) {
      const mt = u.m * clampedAcos(z);
      const k = Math.floor(mt / Math.PI);
      const sign = k % 2 === 0 ? 1 : -1;
      return u.s * (sign * Math.cos(mt) - 2 * k);
    },
    targetGrad: (_z, u) => u.s,
    // k = 0 for a non-target (theta < pi), so its logit is s * cos(acos(clamp(z))) = s * clamp(z).
    other: (z, u) => u.s * Math.min(Math.max(z, u.lo), u.hi),
    otherGrad: (_z, u) => u.s,
    otherLinear: { scale: s, lo, hi, slope: s, slopeOutside: s },
    // acos and cos from core's fr_acos and fr_sin_cos: WGSL's own cost up to 0.12 of the tolerance.
    wgsl: TRIG_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  let mt = u.m * fr_acos(clamp(z, u.lo, u.hi));
  let k = floor(mt / FR_PI);
  let sign = 1.0 - 2.0 * (k - 2.0 * floor(k / 2.0));
  return u.s * (sign * fr_sin_cos(mt).y - 2.0 * k);
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, u.lo, u.hi); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });
}

/** lambda of the A-Softmax annealing at an iteration. */
export function aSoftmaxLambda(p: { base: number; gamma: number; power: number; lambdaMin: number }, iteration: number): number {
  return Math.max(p.lambdaMin, p.base * Math.pow(1 + p.gamma * iteration, -p.power));
}

/** psi(c) = (-1)^k T_m(c) - 2k and its derivative (-1)^k m U_{m-1}(c), by the Chebyshev recurrences. */
export function psiInteger(c: number, m: number): [number, number] {
  let t0 = 1, t1 = c, u0 = 1, u1 = 2 * c;
  if (m === 0) return [1, 0];
  for (let i = 1; i < m; i++) {
    [t0, t1] = [t1, 2 * c * t1 - t0];
    if (i < m - 1) [u0, u1] = [u1, 2 * c * u1 - u0];
  }
  const uPrev = m === 1 ? 1 : u1; // U_{m-1}
  const k = Math.floor((m * Math.acos(c)) / 3.14159265);
  const sign = k % 2 === 0 ? 1 : -1;
  return [sign * t1 - 2 * k, sign * m * uPrev];
}

/**
 * A-Softmax on the raw score Z = x . w/|w| = |x| cos, with |x| as row context. The target logit
 * is (lambda Z + |x| psi(Z/|x|)) / (1 + lambda); the gradient is exact in Z with |x| held fixed.
 */
export function aSoftmaxTransform(m: number, lambda: number): MarginTransform {
  const target = (z: number, u: Record<string, number>, n: number) => {
    const c = Math.min(Math.max(z / n, -1), 1);
    return [c, ...psiInteger(c, u.m)] as const;
  };
  return defineTransform({
    key: 'a-softmax',
    uniforms: { m, lambda },
    target(z, u, row) {
      const n = Math.max(row.context, 1e-12);
      const [, psi] = target(z, u, n);
      return (u.lambda * z + n * psi) / (1 + u.lambda);
    },
    targetGrad(z, u, row) {
      const [, , dpsi] = target(z, u, Math.max(row.context, 1e-12));
      return (u.lambda + dpsi) / (1 + u.lambda);
    },
    other: (z) => z,
    otherGrad: () => 1,
    otherLinear: { scale: 1, lo: -Infinity, hi: Infinity, slope: 1, slopeOutside: 1 },
    wgsl: TRIG_WGSL + /* wgsl */ `
fn fr_psi(c: f32) -> vec2<f32> {
  let m = i32(u.m);
  var t0 = 1.0; var t1 = c; var u0 = 1.0; var u1 = 2.0 * c;
  for (var i = 1; i < m; i++) {
    let t2 = 2.0 * c * t1 - t0; t0 = t1; t1 = t2;
    if (i < m - 1) { let u2 = 2.0 * c * u1 - u0; u0 = u1; u1 = u2; }
  }
  var up = u1;
  if (m == 1) { up = 1.0; }
  let k = floor(u.m * fr_acos(c) / 3.14159265);
  let sign = 1.0 - 2.0 * (k - 2.0 * floor(k / 2.0));
  return vec2<f32>(sign * t1 - 2.0 * k, sign * u.m * up);
}
fn fr_target(z: f32, row: FrRow) -> f32 {
  let n = max(row.context, 1e-12);
  let p = fr_psi(clamp(z / n, -1.0, 1.0));
  return (u.lambda * z + n * p.x) / (1.0 + u.lambda);
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 {
  let n = max(row.context, 1e-12);
  let p = fr_psi(clamp(z / n, -1.0, 1.0));
  return (u.lambda + p.y) / (1.0 + u.lambda);
}
fn fr_other(z: f32, row: FrRow) -> f32 { return z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return 1.0; }
`,
  });
}

function aSoftmaxHead(ctx: HeadContext<z.infer<typeof aSoftmaxParams>>): LossHead {
  const p = ctx.params;
  const weight = classWeights(ctx, 'sphereface.weight');
  const parameters: NamedTensor[] = [{ name: weight.name, tensor: weight }];
  let iteration = p.startIteration;
  return {
    parameters,
    buffers: [],
    forward(embeddings, labels) {
      assertEmbeddings(embeddings, ctx.embeddingDim, 'sphereface');
      const batch = embeddings.shape[0];
      const y = labelTensor(ctx.backend, labels, ctx.numClasses, 'sphereface labels');
      const norms = normsOf(l2normalize(embeddings));
      const scores = matmul(embeddings, l2normalize(weight), { transB: true });
      const transform = aSoftmaxTransform(p.m, aSoftmaxLambda(p, iteration));
      iteration++;
      return marginLoss(scores, y, { transform, reducer: 'softmax-ce', scale: 1 / batch, rowContext: norms });
    },
    dispose() {
      weight.dispose();
    },
  };
}

export const sphereface = defineLoss({
  name: 'sphereface',
  description: 'SphereFace multiplicative angular margin: opensphere (detached, default) or the original A-Softmax',
  params: spherefaceParams,
  createHead(ctx) {
    const p = ctx.params;
    if (p.variant === 'a-softmax') return aSoftmaxHead({ ...ctx, params: p });
    const transform = spherefaceTransform(p.s, p.m);
    return cosineMarginHead(ctx, { name: 'sphereface', transform: () => transform, reducer: 'softmax-ce' });
  },
});

export default sphereface;
