// Float32-lane exp and log shared by the margin kernels; under assembly/shared/ so it is no entry of its own.

// exp(x) for f32 lanes (Cephes expf: x = n ln 2 + r, |r| <= ln 2 / 2, degree-6 polynomial; about
// 1 ulp). Below -87.3 (past the smallest normal float) the result is 0.
@inline export function exp4(x: v128): v128 {
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.add(r, f32x4.mul(n, f32x4.splat(2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1));
  const ni = i32x4.max_s(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(-127));
  const pow2 = i32x4.shl(i32x4.add(ni, i32x4.splat(127)), 23);
  return v128.andnot(f32x4.mul(y, pow2), f32x4.lt(x, f32x4.splat(-87.33654)));
}

// log(x) for f32 lanes, x > 0 normal (Cephes logf: x = m 2^e, m in [sqrt(1/2), sqrt(2)), degree-8
// polynomial in m - 1; about 1 ulp).
@inline export function log4(x: v128): v128 {
  const bits = i32x4.shr_u(x, 23);
  let e = f32x4.convert_i32x4_s(i32x4.sub(v128.and(bits, i32x4.splat(0xff)), i32x4.splat(126)));
  // m in [0.5, 1): the mantissa with the exponent of 0.5.
  let m = v128.or(v128.and(x, i32x4.splat(0x807fffff)), i32x4.splat(0x3f000000));
  const small = f32x4.lt(m, f32x4.splat(0.707106781186547524));
  // Below sqrt(1/2): 2m - 1 and one less in the exponent; else m - 1.
  const t = f32x4.sub(f32x4.add(m, v128.and(m, small)), f32x4.splat(1));
  e = f32x4.sub(e, v128.and(f32x4.splat(1), small));
  const z = f32x4.mul(t, t);
  let p = f32x4.splat(7.0376836292e-2);
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.1514610310e-1));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.1676998740e-1));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.2420140846e-1));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.4249322787e-1));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.6668057665e-1));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(2.0000714765e-1));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-2.4999993993e-1));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(3.3333331174e-1));
  let y = f32x4.mul(f32x4.mul(p, t), z);
  y = f32x4.add(y, f32x4.mul(e, f32x4.splat(-2.12194440e-4)));
  y = f32x4.sub(y, f32x4.mul(z, f32x4.splat(0.5)));
  return f32x4.add(f32x4.add(t, y), f32x4.mul(e, f32x4.splat(0.693359375)));
}

// x^n for f32 lanes and an integer n >= 1 (binary powering).
@inline export function powi4(x: v128, n: i32): v128 {
  let result = f32x4.splat(1), base = x;
  while (true) {
    if (n & 1) result = f32x4.mul(result, base);
    n >>= 1;
    if (n == 0) return result;
    base = f32x4.mul(base, base);
  }
}
