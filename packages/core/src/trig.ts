/**
 * sin and cos of a value computed on the device (a per-row margin), to f32 rounding. WGSL's
 * built-in sin and cos only promise an absolute error of 2^-11 on [-pi, pi], and SwiftShader gives
 * about that: times s = 64 it spends a third of the golden tolerance. Margins known on the host go
 * in as uniforms (Math.cos there); a margin that lives in the row context goes through `fr_sin_cos`.
 *
 * Method: Cody-Waite reduction by pi/2 (pi/2 split in an f32 head and its remainder) to |r| <= pi/4,
 * then the Taylor polynomials of sin (to r^9) and cos (to r^10), whose truncation error there is
 * below 2e-9, and the quadrant's swap and signs. `sinCosF32` is the same computation in f32
 * arithmetic (Math.fround at every step), the TS twin of the WGSL, so its accuracy can be tested
 * on the host.
 */

const f32 = Math.fround;
/** f32(pi / 2) and pi/2 - f32(pi / 2) (negative: the f32 rounds up). */
export const PIO2_HI = f32(Math.PI / 2);
export const PIO2_LO = Math.PI / 2 - PIO2_HI;
const TWO_OVER_PI = 2 / Math.PI;
/** Taylor coefficients of sin (r^3 .. r^9) and cos (r^2 .. r^10). */
const SIN = [-1 / 6, 1 / 120, -1 / 5040, 1 / 362880];
const COS = [-1 / 2, 1 / 24, -1 / 720, 1 / 40320, -1 / 3628800];

/** [sin x, cos x] in f32 arithmetic, as `fr_sin_cos` computes them. */
export function sinCosF32(x: number): [number, number] {
  const xf = f32(x);
  const k = Math.round(f32(xf * f32(TWO_OVER_PI)));
  const r = f32(f32(xf - f32(k * PIO2_HI)) + f32(k * f32(-PIO2_LO)));
  const r2 = f32(r * r);
  let ps = f32(SIN[3]);
  for (let i = 2; i >= 0; i--) ps = f32(f32(SIN[i]) + f32(r2 * ps));
  const s = f32(r + f32(f32(r * r2) * ps));
  let pc = f32(COS[4]);
  for (let i = 3; i >= 0; i--) pc = f32(f32(COS[i]) + f32(r2 * pc));
  const c = f32(1 + f32(r2 * pc));
  switch (((k % 4) + 4) % 4) {
    case 0:
      return [s, c];
    case 1:
      return [c, -s];
    case 2:
      return [-s, -c];
    default:
      return [-c, s];
  }
}

const lit = (v: number) => v.toPrecision(17);

/** WGSL: `fr_sin_cos(x)` returns vec2(sin x, cos x); prepend it to a transform's snippet. */
export const TRIG_WGSL = /* wgsl */ `
fn fr_sin_cos(x: f32) -> vec2<f32> {
  let k = round(x * ${lit(TWO_OVER_PI)});
  let r = (x - k * ${lit(PIO2_HI)}) + k * ${lit(-PIO2_LO)};
  let r2 = r * r;
  let s = r + r * r2 * (${lit(SIN[0])} + r2 * (${lit(SIN[1])} + r2 * (${lit(SIN[2])} + r2 * ${lit(SIN[3])})));
  let c = 1.0 + r2 * (${lit(COS[0])} + r2 * (${lit(COS[1])} + r2 * (${lit(COS[2])} + r2 * (${lit(COS[3])} + r2 * ${lit(COS[4])}))));
  let q = i32(k) & 3;
  if (q == 0) { return vec2<f32>(s, c); }
  if (q == 1) { return vec2<f32>(c, -s); }
  if (q == 2) { return vec2<f32>(-s, -c); }
  return vec2<f32>(-c, s);
}
`;
