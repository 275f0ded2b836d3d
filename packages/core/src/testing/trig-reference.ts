/**
 * The f32 twin of core's WGSL `fr_sin_cos` (TRIG_WGSL): the same reduction and polynomials with
 * Math.fround at every step, so its accuracy can be tested on the host. `SIN_COS_CONSTANTS` are the
 * literals both use (a test checks the WGSL holds each of them).
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
