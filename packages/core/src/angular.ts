/**
 * The angular-margin library every ArcFace-like loss uses, in TypeScript and WGSL. One form only:
 * cos(theta + m) is expanded as c cos m - sin(theta) sin m with sin(theta) = sqrt((1 - c)(1 + c)),
 * which stays exact near |c| = 1 where 1 - c * c and f32 acos do not. Slopes divide by sin(theta)
 * clamped below at sqrt(SIN2_MIN) = 1e-3: the true slope diverges at |c| = 1.
 */
import { clampedAcos, COS_CLAMP, defineTransform, THETA_MAX, type MarginTransform, type Uniforms } from './margin.js';

/** Floor of sin^2(theta) in every slope that divides by sin(theta). */
export const SIN2_MIN = 1e-6;

/** sin(theta) from c = cos(theta), as sqrt(max((1 - c)(1 + c), floor)). */
export const sinOfCos = (c: number, floor = 0): number => Math.sqrt(Math.max((1 - c) * (1 + c), floor));
/** cos(theta + m) from c = cos(theta). */
export const cosPlus = (c: number, cosM: number, sinM: number): number => c * cosM - sinOfCos(c) * sinM;
/** sin(theta + m) from c = cos(theta). */
export const sinPlus = (c: number, cosM: number, sinM: number): number => sinOfCos(c) * cosM + c * sinM;
/** d cos(theta + m) / dc = sin(theta + m) / sin(theta), with sin(theta) clamped at 1e-3. */
export const cosPlusSlope = (c: number, cosM: number, sinM: number): number => cosM + (c * sinM) / sinOfCos(c, SIN2_MIN);
/** clamp(z, -1, 1). */
export const clampUnit = (z: number): number => Math.min(Math.max(z, -1), 1);

/** The classic (th/mm) constants of a margin m: beyond theta + m = pi the logit goes on as c - m sin m. */
export function thMmUniforms(m: number) {
  return { cos_m: Math.cos(m), sin_m: Math.sin(m), th: Math.cos(Math.PI - m), mm: Math.sin(m) * m };
}
/** Classic cos(theta + m) of the first insightface code: c > th ? cos(theta + m) : c - mm (c clamped to [-1, 1]). */
export function thMm(z: number, u: Uniforms): number {
  const c = clampUnit(z);
  return c > u.th ? cosPlus(c, u.cos_m, u.sin_m) : c - u.mm;
}
/** Its exact slope in c. */
export function thMmSlope(z: number, u: Uniforms): number {
  const c = clampUnit(z);
  return c > u.th ? cosPlusSlope(c, u.cos_m, u.sin_m) : 1;
}
/** opensphere's detached target: cos(clamp(acos(clamp(z)) + m, 1e-5, 3.14159)). */
export function openspherePlus(z: number, m: number): number {
  return Math.cos(Math.min(Math.max(clampedAcos(z) + m, 1e-5), THETA_MAX));
}

/**
 * The same helpers in WGSL; a transform that uses them prepends this to its snippet. Functions take
 * their constants as arguments, so they read no uniform.
 */
export const ANGULAR_WGSL = /* wgsl */ `
const FR_SIN2_MIN: f32 = ${SIN2_MIN};
fn fr_sin_of_cos(c: f32, sin2_floor: f32) -> f32 { return sqrt(max((1.0 - c) * (1.0 + c), sin2_floor)); }
fn fr_cos_plus(c: f32, cos_m: f32, sin_m: f32) -> f32 { return c * cos_m - fr_sin_of_cos(c, 0.0) * sin_m; }
fn fr_sin_plus(c: f32, cos_m: f32, sin_m: f32) -> f32 { return fr_sin_of_cos(c, 0.0) * cos_m + c * sin_m; }
fn fr_cos_plus_slope(c: f32, cos_m: f32, sin_m: f32) -> f32 { return cos_m + c * sin_m / fr_sin_of_cos(c, FR_SIN2_MIN); }
fn fr_th_mm(z: f32, cos_m: f32, sin_m: f32, th: f32, mm: f32) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (c > th) { return fr_cos_plus(c, cos_m, sin_m); }
  return c - mm;
}
fn fr_th_mm_slope(z: f32, cos_m: f32, sin_m: f32, th: f32) -> f32 {
  let c = clamp(z, -1.0, 1.0);
  if (c > th) { return fr_cos_plus_slope(c, cos_m, sin_m); }
  return 1.0;
}
`;

/**
 * ArcFace's margin s cos(theta + m) on the target, s cos on the others, in one of two gradient rules:
 * - "detached": opensphere's form (theta + m clamped to [1e-5, 3.14159], cosines clamped 1e-5 inside
 *   [-1, 1]), applied under no_grad, so d logit / d cos = s;
 * - "exact": the classic th/mm form, differentiated through cos(theta + m).
 */
export function arcMarginTransform(s: number, m: number, gradient: 'detached' | 'exact'): MarginTransform {
  if (gradient === 'exact') {
    return defineTransform({
      key: 'arc-margin-exact',
      uniforms: { s, ...thMmUniforms(m) },
      target: (z, u) => u.s * thMm(z, u),
      targetGrad: (z, u) => u.s * thMmSlope(z, u),
      other: (z, u) => u.s * clampUnit(z),
      otherGrad: (_z, u) => u.s,
      otherLinear: { scale: s, lo: -1, hi: 1, slope: s, slopeOutside: s },
      wgsl: ANGULAR_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * fr_th_mm(z, u.cos_m, u.sin_m, u.th, u.mm); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s * fr_th_mm_slope(z, u.cos_m, u.sin_m, u.th); }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, -1.0, 1.0); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
    });
  }
  // Below c_max, theta + m passes 3.14159 and the logit is s cos(3.14159). The lower clamp 1e-5
  // never binds for m >= 0 (theta >= acos(1 - 1e-5) = 0.0045).
  const cMax = m >= THETA_MAX ? 2 : Math.cos(THETA_MAX - m);
  return defineTransform({
    key: 'arc-margin-detached',
    uniforms: { s, m, lo: -1 + COS_CLAMP, hi: 1 - COS_CLAMP, cos_m: Math.cos(m), sin_m: Math.sin(m), c_max: cMax, cos_max: Math.cos(THETA_MAX) },
    target: (z, u) => u.s * openspherePlus(z, u.m),
    targetGrad: (_z, u) => u.s,
    // cos(acos(clamp(z))) is clamp(z): opensphere applies the same no_grad rewrite to every class.
    other: (z, u) => u.s * Math.min(Math.max(z, u.lo), u.hi),
    otherGrad: (_z, u) => u.s,
    otherLinear: { scale: s, lo: -1 + COS_CLAMP, hi: 1 - COS_CLAMP, slope: s, slopeOutside: s },
    wgsl: ANGULAR_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 {
  let c = clamp(z, u.lo, u.hi);
  if (c < u.c_max) { return u.s * u.cos_max; }
  return u.s * fr_cos_plus(c, u.cos_m, u.sin_m);
}
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * clamp(z, u.lo, u.hi); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });
}
