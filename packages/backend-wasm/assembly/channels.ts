// Per-channel layer kernels over x laid out [outer, channels, inner] (NCHW: outer = N, inner = HW),
// for the channels [c0, c1) (threads split the channels, so each channel's sums have one order).
// Sums run in float32 lanes along a row of `inner` values, and in float64 across rows.

@inline function rowSum(p: usize, n: i32): f64 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, v128.load(p + <usize>i * 4));
  let s: f64 = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
  for (; i < n; i++) s += <f64>load<f32>(p + <usize>i * 4);
  return s;
}

@inline function lanes(v: v128): f64 {
  return <f64>f32x4.extract_lane(v, 0) + <f64>f32x4.extract_lane(v, 1) + <f64>f32x4.extract_lane(v, 2) + <f64>f32x4.extract_lane(v, 3);
}

export function preluForward(x: usize, slope: usize, out: usize, outer: i32, channels: i32, inner: i32, c0: i32, c1: i32): void {
  const zero = f32x4.splat(0);
  for (let n = 0; n < outer; n++) {
    for (let c = c0; c < c1; c++) {
      const s = load<f32>(slope + <usize>c * 4);
      const vs = f32x4.splat(s);
      const base = <usize>((n * channels + c) * inner) * 4;
      let i = 0;
      for (; i + 4 <= inner; i += 4) {
        const v = v128.load(x + base + <usize>i * 4);
        v128.store(out + base + <usize>i * 4, v128.bitselect(v, f32x4.mul(v, vs), f32x4.gt(v, zero)));
      }
      for (; i < inner; i++) {
        const v = load<f32>(x + base + <usize>i * 4);
        store<f32>(out + base + <usize>i * 4, v > 0 ? v : s * v);
      }
    }
  }
}

export function preluBackward(g: usize, x: usize, slope: usize, gx: usize, gslope: usize, outer: i32, channels: i32, inner: i32, c0: i32, c1: i32): void {
  const zero = f32x4.splat(0);
  for (let c = c0; c < c1; c++) {
    const s = load<f32>(slope + <usize>c * 4);
    const vs = f32x4.splat(s);
    let total: f64 = 0;
    for (let n = 0; n < outer; n++) {
      const base = <usize>((n * channels + c) * inner) * 4;
      let acc = f32x4.splat(0);
      let i = 0;
      for (; i + 4 <= inner; i += 4) {
        const v = v128.load(x + base + <usize>i * 4);
        const gv = v128.load(g + base + <usize>i * 4);
        const pos = f32x4.gt(v, zero);
        v128.store(gx + base + <usize>i * 4, v128.bitselect(gv, f32x4.mul(gv, vs), pos));
        acc = f32x4.add(acc, v128.andnot(f32x4.mul(v, gv), pos));
      }
      let rest: f64 = 0;
      for (; i < inner; i++) {
        const v = load<f32>(x + base + <usize>i * 4);
        const gv = load<f32>(g + base + <usize>i * 4);
        store<f32>(gx + base + <usize>i * 4, v > 0 ? gv : s * gv);
        if (v <= 0) rest += <f64>(v * gv);
      }
      total += lanes(acc) + rest;
    }
    store<f32>(gslope + <usize>c * 4, <f32>total);
  }
}

export function batchNormForward(
  x: usize, gamma: usize, beta: usize, mean: usize, variance: usize, out: usize,
  outer: i32, channels: i32, inner: i32, eps: f32, training: bool, c0: i32, c1: i32,
): void {
  const count = <f64>outer * <f64>inner;
  for (let c = c0; c < c1; c++) {
    let mu: f64, v: f64;
    if (training) {
      let s: f64 = 0;
      for (let n = 0; n < outer; n++) s += rowSum(x + <usize>((n * channels + c) * inner) * 4, inner);
      mu = s / count;
      // Second pass: squared deviations (no cancellation of E[x^2] - E[x]^2).
      const vm = f32x4.splat(<f32>mu);
      let q: f64 = 0;
      for (let n = 0; n < outer; n++) {
        const p = x + <usize>((n * channels + c) * inner) * 4;
        let acc = f32x4.splat(0);
        let i = 0;
        for (; i + 4 <= inner; i += 4) {
          const d = f32x4.sub(v128.load(p + <usize>i * 4), vm);
          acc = f32x4.add(acc, f32x4.mul(d, d));
        }
        q += lanes(acc);
        for (; i < inner; i++) {
          const d = <f64>load<f32>(p + <usize>i * 4) - mu;
          q += d * d;
        }
      }
      v = q / count;
      store<f32>(mean + <usize>c * 4, <f32>mu);
      store<f32>(variance + <usize>c * 4, <f32>v);
    } else {
      mu = <f64>load<f32>(mean + <usize>c * 4);
      v = <f64>load<f32>(variance + <usize>c * 4);
    }
    const scale = <f64>load<f32>(gamma + <usize>c * 4) / Math.sqrt(v + <f64>eps);
    const shift = <f64>load<f32>(beta + <usize>c * 4) - mu * scale;
    const vscale = f32x4.splat(<f32>scale), vshift = f32x4.splat(<f32>shift);
    for (let n = 0; n < outer; n++) {
      const off = <usize>((n * channels + c) * inner) * 4;
      let i = 0;
      for (; i + 4 <= inner; i += 4) v128.store(out + off + <usize>i * 4, f32x4.add(f32x4.mul(v128.load(x + off + <usize>i * 4), vscale), vshift));
      for (; i < inner; i++) store<f32>(out + off + <usize>i * 4, <f32>(<f64>load<f32>(x + off + <usize>i * 4) * scale + shift));
    }
  }
}

export function batchNormBackward(
  g: usize, x: usize, gamma: usize, mean: usize, variance: usize, gx: usize, gGamma: usize, gBeta: usize,
  outer: i32, channels: i32, inner: i32, eps: f32, training: bool, c0: i32, c1: i32,
): void {
  const count = <f64>outer * <f64>inner;
  for (let c = c0; c < c1; c++) {
    const mu = <f64>load<f32>(mean + <usize>c * 4);
    const invStd = 1 / Math.sqrt(<f64>load<f32>(variance + <usize>c * 4) + <f64>eps);
    const vm = f32x4.splat(<f32>mu);
    let sg: f64 = 0, sgx: f64 = 0;
    for (let n = 0; n < outer; n++) {
      const off = <usize>((n * channels + c) * inner) * 4;
      let a = f32x4.splat(0), b = f32x4.splat(0);
      let i = 0;
      for (; i + 4 <= inner; i += 4) {
        const gv = v128.load(g + off + <usize>i * 4);
        a = f32x4.add(a, gv);
        b = f32x4.add(b, f32x4.mul(gv, f32x4.sub(v128.load(x + off + <usize>i * 4), vm)));
      }
      sg += lanes(a);
      sgx += lanes(b);
      for (; i < inner; i++) {
        const gv = <f64>load<f32>(g + off + <usize>i * 4);
        sg += gv;
        sgx += gv * (<f64>load<f32>(x + off + <usize>i * 4) - mu);
      }
    }
    const dGamma = sgx * invStd;
    store<f32>(gBeta + <usize>c * 4, <f32>sg);
    store<f32>(gGamma + <usize>c * 4, <f32>dGamma);
    const k = <f64>load<f32>(gamma + <usize>c * 4) * invStd;
    // dx = k (g - mean(g) - xhat mean(g xhat)) = k g - k mean(g) - (x - mu) k invStd mean(g xhat)
    const a1 = training ? k * (sg / count) : 0;
    const a2 = training ? k * invStd * (dGamma / count) : 0;
    const vk = f32x4.splat(<f32>k), va1 = f32x4.splat(<f32>a1), va2 = f32x4.splat(<f32>a2);
    for (let n = 0; n < outer; n++) {
      const off = <usize>((n * channels + c) * inner) * 4;
      let i = 0;
      for (; i + 4 <= inner; i += 4) {
        const d = f32x4.sub(v128.load(x + off + <usize>i * 4), vm);
        const r = f32x4.sub(f32x4.sub(f32x4.mul(vk, v128.load(g + off + <usize>i * 4)), va1), f32x4.mul(va2, d));
        v128.store(gx + off + <usize>i * 4, r);
      }
      for (; i < inner; i++) {
        const d = <f64>load<f32>(x + off + <usize>i * 4) - mu;
        store<f32>(gx + off + <usize>i * 4, <f32>(k * <f64>load<f32>(g + off + <usize>i * 4) - a1 - a2 * d));
      }
    }
  }
}
