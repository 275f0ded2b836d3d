/**
 * f32-accurate sin, cos and acos for margins computed on the device: WGSL's built-ins promise 2^-11
 * (on SwiftShader, a third of AdaFace's golden tolerance and 0.12 of SphereFace's). `fr_sin_cos(x)`:
 * Cody-Waite reduction by pi/2 to |r| <= pi/4, Taylor polynomials of sin (to r^9) and cos (to r^10),
 * then the quadrant. `fr_acos(x)`: asin t = t + t^3 P(t^2) on t <= 1/2, t = sqrt((1 - |x|) / 2)
 * beyond. Their f32 twins are `sinCosF32` and `acosF32` in @fr/core/testing.
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
fn fr_acos(x: f32) -> f32 {
  let a = abs(x); let big = a > 0.5; let z = select(a * a, 0.5 - 0.5 * a, big); let t = select(a, sqrt(z), big);
  let r = t + t * z * (0.1666675292 + z * (0.07495297947 + z * (0.0454691876 + z * (0.02418865237 + z * 0.04214736054))));
  let pio2_minus_r = 1.5707963705062866 - (select(r, -r, x < 0.0 && !big) + 4.3711390063094768e-8);
  return select(pio2_minus_r, select(2.0 * pio2_minus_r, 2.0 * r, x > 0.0), big);
}
`;
