/**
 * The f32 twins of core's WGSL `fr_sin_cos` and `fr_acos` (TRIG_WGSL): the same reductions and
 * polynomials with Math.fround at every step, so their accuracy can be tested on the host.
 * `SIN_COS_CONSTANTS` and `ACOS_CONSTANTS` are the literals both use (a test checks the WGSL holds each of them).
 */
const f32 = Math.fround;

export const SIN_COS_CONSTANTS = {
  twoOverPi: 0.63661977236758138,
  /** f32(pi / 2), and pi / 2 - f32(pi / 2) negated (the f32 rounds up). */
  pio2Hi: 1.5707963705062866,
  pio2LoNeg: 4.3711390063094768e-8,
  /** Taylor coefficients of sin, r^3 .. r^9, and of cos, r^2 .. r^10. */
  sin: [-0.16666666666666666, 0.0083333333333333332, -0.00019841269841269841, 2.7557319223985893e-6],
  cos: [-0.5, 0.041666666666666664, -0.0013888888888888889, 2.4801587301587302e-5, -2.7557319223985888e-7],
} as const;

/** [sin x, cos x] in f32 arithmetic, as `fr_sin_cos` computes them. */
export function sinCosF32(x: number): [number, number] {
  const K = SIN_COS_CONSTANTS;
  const xf = f32(x);
  const k = Math.round(f32(xf * f32(K.twoOverPi)));
  const r = f32(f32(xf - f32(k * f32(K.pio2Hi))) + f32(k * f32(K.pio2LoNeg)));
  const r2 = f32(r * r);
  let ps = f32(K.sin[3]);
  for (let i = 2; i >= 0; i--) ps = f32(f32(K.sin[i]) + f32(r2 * ps));
  const s = f32(r + f32(f32(r * r2) * ps));
  let pc = f32(K.cos[4]);
  for (let i = 3; i >= 0; i--) pc = f32(f32(K.cos[i]) + f32(r2 * pc));
  const c = f32(1 + f32(r2 * pc));
  const v: [number, number] = (k & 1) === 1 ? [c, -s] : [s, c];
  return (k & 2) === 2 ? [-v[0], -v[1]] : v;
}

export const ACOS_CONSTANTS = {
  /** P(z) of asin(t) = t + t z P(z), z = t^2 <= 1/4: a least-squares fit at Chebyshev nodes (relative error 5e-9 in float64). */
  asin: [0.1666675292, 0.07495297947, 0.0454691876, 0.02418865237, 0.04214736054],
} as const;

/** acos x in f32 arithmetic, as `fr_acos` computes it. */
export function acosF32(x: number): number {
  const { asin } = ACOS_CONSTANTS;
  const { pio2Hi, pio2LoNeg } = SIN_COS_CONSTANTS;
  const xf = f32(x);
  const a = Math.abs(xf);
  // Beyond 1/2, acos |x| = 2 asin t with t^2 = (1 - |x|) / 2, exact in f32 there.
  const big = a > 0.5;
  const z = big ? f32(0.5 - f32(0.5 * a)) : f32(a * a);
  const t = big ? f32(Math.sqrt(z)) : a;
  let p = f32(asin[4]);
  for (let i = 3; i >= 0; i--) p = f32(f32(asin[i]) + f32(z * p));
  const r = f32(t + f32(f32(t * z) * p));
  if (!big) return f32(f32(pio2Hi) - f32((xf < 0 ? -r : r) + f32(pio2LoNeg)));
  return xf > 0 ? f32(2 * r) : f32(2 * f32(f32(pio2Hi) - f32(r + f32(pio2LoNeg))));
}
