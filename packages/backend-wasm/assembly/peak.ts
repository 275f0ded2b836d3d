// A register-only loop of independent 128-bit multiplies and adds: the flop rate the micro-kernels
// can at most reach on this machine (the bench prints kernels as a fraction of it).
export function peakFlops(iterations: i32, seed: f32): f32 {
  const m = f32x4.splat(seed);
  let a0 = f32x4.splat(1), a1 = f32x4.splat(2), a2 = f32x4.splat(3), a3 = f32x4.splat(4);
  let a4 = f32x4.splat(5), a5 = f32x4.splat(6), a6 = f32x4.splat(7), a7 = f32x4.splat(8);
  let a8 = f32x4.splat(9), a9 = f32x4.splat(10), a10 = f32x4.splat(11), a11 = f32x4.splat(12);
  for (let i = 0; i < iterations; i++) {
    a0 = f32x4.add(f32x4.mul(a0, m), m); a1 = f32x4.add(f32x4.mul(a1, m), m);
    a2 = f32x4.add(f32x4.mul(a2, m), m); a3 = f32x4.add(f32x4.mul(a3, m), m);
    a4 = f32x4.add(f32x4.mul(a4, m), m); a5 = f32x4.add(f32x4.mul(a5, m), m);
    a6 = f32x4.add(f32x4.mul(a6, m), m); a7 = f32x4.add(f32x4.mul(a7, m), m);
    a8 = f32x4.add(f32x4.mul(a8, m), m); a9 = f32x4.add(f32x4.mul(a9, m), m);
    a10 = f32x4.add(f32x4.mul(a10, m), m); a11 = f32x4.add(f32x4.mul(a11, m), m);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  const t = f32x4.add(s, f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11)));
  return f32x4.extract_lane(t, 0);
}
