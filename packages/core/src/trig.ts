/**
 * `fr_sin_cos(x)`: vec2(sin x, cos x) to f32 rounding, for a margin computed on the device. WGSL's
 * built-in sin and cos only promise 2^-11 (SwiftShader: a third of the golden tolerance at s = 64).
 * Cody-Waite reduction by pi/2 (f32 head and remainder) to |r| <= pi/4, Taylor polynomials of sin
 * (to r^9) and cos (to r^10), then the quadrant. Its f32 twin is `sinCosF32` in @fr/core/testing.
 */
export const TRIG_WGSL = /* wgsl */ `
fn fr_sin_cos(x: f32) -> vec2<f32> {
  let k = round(x * 0.63661977236758138);
  let r = (x - k * 1.5707963705062866) + k * 4.3711390063094768e-8;
  let r2 = r * r;
  let s = r + r * r2 * (-0.16666666666666666 + r2 * (0.0083333333333333332 + r2 * (-0.00019841269841269841 + r2 * 2.7557319223985893e-6)));
  let c = 1.0 + r2 * (-0.5 + r2 * (0.041666666666666664 + r2 * (-0.0013888888888888889 + r2 * (2.4801587301587302e-5 - r2 * 2.7557319223985888e-7))));
  let q = i32(k) & 3;
  let v = select(vec2<f32>(s, c), vec2<f32>(c, -s), (q & 1) == 1);
  return select(v, -v, (q & 2) == 2);
}
`;
