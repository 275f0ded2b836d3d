/**
 * Margin transforms: the elementwise rewrite of the score matrix that distinguishes one loss of
 * the field from another. A transform is data: a TypeScript definition (the reference, used by the
 * CPU backend) and a WGSL snippet with the same meaning (used by the WebGPU fused kernel). Scalar
 * parameters travel as uniforms, so changing s or m never recompiles a shader.
 */

import { ConfigError } from './errors.js';

/** Per-row values a transform may read besides the score itself. */
export interface RowContext {
  /** The score of the row's target class (z[b, y_b]), NaN when in another shard; `row.target_z` in WGSL. */
  target: number;
  /** The optional per-row context value (for example the feature norm); 0 when absent. */
  context: number;
}

export type Uniforms = Readonly<Record<string, number>>;

/**
 * `other(z) = scale * min(max(z, lo), hi)` for every row, `otherGrad(z)` = `slope` for lo <= z <= hi
 * and `slopeOutside` elsewhere (lo, hi may be infinite); independent of the row, so
 * `otherContextGrad`, if any, is 0. Backends that cannot call TypeScript per
 * score (WebAssembly SIMD) run the non-target scores from it, and check it against the functions.
 */
export interface LinearOther { scale: number; lo: number; hi: number; slope: number; slopeOutside: number }

/**
 * `other(z) = scale * max(inner * min(max(z, lo), hi) + shift, 0)^power + offset` for every row
 * (power > 0; SphereFace2's r (g(cos) + m) with g(c) = 2((c + 1) / 2)^t - 1), and `otherGrad(z)` =
 * `slope` for lo <= z <= hi, `slopeOutside` elsewhere (a gradient rule that detaches the rewrite).
 * Independent of the row, as `LinearOther`; backends use it where that one does.
 */
export interface PowerOther {
  scale: number;
  lo: number;
  hi: number;
  inner: number;
  shift: number;
  power: number;
  offset: number;
  slope: number;
  slopeOutside: number;
}

/**
 * Non-target logits that are linear below a per-row threshold and quadratic above it: with
 * c = min(max(z, lo), hi) and thr = `threshold(u, row)`,
 * `other(z) = scale * c` where c <= thr (or thr is NaN) and `scale * c * (row.context + c)` where c > thr;
 * `otherGrad(z)` = `slopeOutside` outside [lo, hi], else `slope` below the threshold and the exact
 * `scale * (row.context + 2 c)` above it (the mask itself is not differentiated). `row.context` is a
 * constant for the gradient here, so `contextGradient` cannot go with it. The threshold is TypeScript,
 * evaluated once per row by a backend (CurricularFace's hard negatives: above cos(theta_y + m),
 * with the running mean t as the context); the C scores of a row then run in closed form.
 */
export interface ThresholdOther<U extends Uniforms = Uniforms> {
  scale: number;
  lo: number;
  hi: number;
  slope: number;
  slopeOutside: number;
  threshold(u: U, row: RowContext): number;
}

/**
 * Target and non-target transforms with their derivatives. The derivative is what the gradient
 * rule says it is: for a margin applied under no_grad ("detached") it is the slope of the
 * non-margin logit (s), not the derivative of the margin logit.
 */
export interface MarginTransform<U extends Uniforms = Uniforms> {
  /** Identifies the WGSL code: two transforms with the same key must have the same snippet. */
  key: string;
  /** Scalar parameters, read in WGSL as `u.<name>`, in TS typed exactly (`u.s: number`). Order is part of the layout. */
  uniforms: U;
  /** Logit of the target class, and its d logit / dz under the gradient rule; `other*` for a non-target class. */
  target(z: number, u: U, row: RowContext): number;
  targetGrad(z: number, u: U, row: RowContext): number;
  other(z: number, u: U, row: RowContext): number;
  otherGrad(z: number, u: U, row: RowContext): number;
  /**
   * The logits depend differentiably on `row.context` (MagFace's margin is a function of the trained
   * feature norm): the transform defines the d logit / d row.context below, its WGSL
   * `fn fr_target_context_grad(z: f32, row: FrRow) -> f32` and `fn fr_other_context_grad`, and
   * `marginLoss` passes a gradient to a context that requires one. Otherwise the context is a constant.
   */
  contextGradient?: boolean;
  targetContextGrad?(z: number, u: U, row: RowContext): number;
  otherContextGrad?(z: number, u: U, row: RowContext): number;
  /** Optional: `other`/`otherGrad` in closed form (see `LinearOther`); a transform without it runs the reference. */
  otherLinear?: LinearOther;
  /** Optional: `other`/`otherGrad` as a power of the clamped score (see `PowerOther`), for transforms that are not linear. */
  otherPower?: PowerOther;
  /** Optional: `other`/`otherGrad` linear below a per-row threshold, quadratic above it (see `ThresholdOther`). */
  otherThreshold?: ThresholdOther<U>;
  /**
   * WGSL defining `fn fr_target(z: f32, row: FrRow) -> f32`, `fn fr_target_grad(...)`,
   * `fn fr_other(...)` and `fn fr_other_grad(...)`. The prelude declares
   * `struct FrRow { target_z: f32, context: f32 }` (`target_z` is `RowContext.target`: `target` is
   * a reserved word in WGSL), a uniform `u` with one f32 field per uniform name, and the constant
   * `FR_PI: f32`.
   */
  wgsl: string;
}

/** Builds a transform; keeps the TS and WGSL halves next to each other in a plugin. */
export function defineTransform<U extends Uniforms>(t: MarginTransform<U>): MarginTransform<U> {
  for (const [name, value] of Object.entries(t.uniforms)) {
    if (!/^[a-z_][a-z0-9_]*$/i.test(name)) {
      throw new ConfigError(`transform ${t.key}: uniform name "${name}" is not a valid WGSL identifier`);
    }
    if (typeof value !== 'number') {
      throw new ConfigError(`transform ${t.key}: uniform ${name} must be a number, got ${typeof value}`);
    }
  }
  if (t.contextGradient) {
    if (!t.targetContextGrad || !t.otherContextGrad) {
      throw new ConfigError(`transform ${t.key}: contextGradient needs targetContextGrad and otherContextGrad`);
    }
    for (const fn of ['fr_target_context_grad', 'fr_other_context_grad']) {
      if (!new RegExp(`fn\\s+${fn}\\s*\\(`).test(t.wgsl)) {
        throw new ConfigError(`transform ${t.key}: contextGradient needs \`fn ${fn}\` in its WGSL`);
      }
    }
  }
  if (t.otherThreshold && t.contextGradient) {
    throw new ConfigError(`transform ${t.key}: otherThreshold treats row.context as a constant, so it cannot go with contextGradient`);
  }
  return t;
}

/** The identity transform: logits are the scores (plain softmax, L2-softmax). */
export const identityTransform: MarginTransform = defineTransform({
  key: 'identity',
  uniforms: {},
  target: (z) => z,
  targetGrad: () => 1,
  other: (z) => z,
  otherGrad: () => 1,
  otherLinear: { scale: 1, lo: -Infinity, hi: Infinity, slope: 1, slopeOutside: 1 },
  wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return z; }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return 1.0; }
fn fr_other(z: f32, row: FrRow) -> f32 { return z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return 1.0; }
`,
});

/** s * z for every class, exact gradient (NormFace). */
export function scaledTransform(s: number): MarginTransform {
  return defineTransform({
    key: 'scaled',
    uniforms: { s },
    target: (z, u) => u.s * z,
    targetGrad: (_z, u) => u.s,
    other: (z, u) => u.s * z,
    otherGrad: (_z, u) => u.s,
    otherLinear: { scale: s, lo: -Infinity, hi: Infinity, slope: s, slopeOutside: s },
    wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });
}

/** Clamp used before acos by opensphere and insightface: keeps theta finite and its slope bounded. */
export const COS_CLAMP = 1e-5;
/** Upper clamp of theta + m in opensphere (a float just below pi). */
export const THETA_MAX = 3.14159;

/** acos(clamp(z, -1 + 1e-5, 1 - 1e-5)), the theta of opensphere. */
export function clampedAcos(z: number): number {
  return Math.acos(Math.min(Math.max(z, -1 + COS_CLAMP), 1 - COS_CLAMP));
}

/** float32 rounding, for CPU references that must track float32 GPU arithmetic. */
export const f32 = Math.fround;
