// Elementwise kernels and row normalisation over [i0, i1) (threads split the range; every element
// is computed alone, so the split does not change a bit). Row sums: float32 lanes, then float64.

// Binary op codes, in the order of BINARY_OPS in src/elementwise.ts.
const ADD = 0, SUB = 1, MUL = 2, DIV = 3, MAX = 4, MIN = 5, RELU_BACKWARD = 6;

@inline function binaryLanes(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case ADD: return f32x4.add(a, b);
    case SUB: return f32x4.sub(a, b);
    case MUL: return f32x4.mul(a, b);
    case DIV: return f32x4.div(a, b);
    // a > b ? a : b and a < b ? a : b, as the reference (NaN in a gives b).
    case MAX: return v128.bitselect(a, b, f32x4.gt(a, b));
    case MIN: return v128.bitselect(a, b, f32x4.lt(a, b));
    default: return v128.and(a, f32x4.gt(b, f32x4.splat(0)));
  }
}

@inline function binaryScalar(op: i32, a: f32, b: f32): f32 {
  switch (op) {
    case ADD: return a + b;
    case SUB: return a - b;
    case MUL: return a * b;
    case DIV: return a / b;
    case MAX: return a > b ? a : b;
    case MIN: return a < b ? a : b;
    default: return b > 0 ? a : 0;
  }
}

export function binary(op: i32, a: usize, b: usize, out: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i * 4;
    v128.store(out + o, binaryLanes(op, v128.load(a + o), v128.load(b + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i * 4;
    store<f32>(out + o, binaryScalar(op, load<f32>(a + o), load<f32>(b + o)));
  }
}

/** out = alpha a + beta b */
export function axpby(a: usize, b: usize, out: usize, alpha: f32, beta: f32, i0: i32, i1: i32): void {
  const va = f32x4.splat(alpha), vb = f32x4.splat(beta);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i * 4;
    v128.store(out + o, f32x4.add(f32x4.mul(va, v128.load(a + o)), f32x4.mul(vb, v128.load(b + o))));
  }
  for (; i < i1; i++) {
    const o = <usize>i * 4;
    store<f32>(out + o, alpha * load<f32>(a + o) + beta * load<f32>(b + o));
  }
}

/** SGD with momentum (PyTorch): d = g + wd w; buf = m buf + (1 - damp) d; d = nesterov ? d + m buf : buf; w -= lr d. */
export function sgdStep(w: usize, g: usize, buf: usize, lr: f32, momentum: f32, dampening: f32, weightDecay: f32, nesterov: bool, i0: i32, i1: i32): void {
  const vlr = f32x4.splat(lr), vm = f32x4.splat(momentum), vd = f32x4.splat(1 - dampening), vwd = f32x4.splat(weightDecay);
  const useMomentum = momentum != 0;
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i * 4;
    const wv = v128.load(w + o);
    let d = f32x4.add(v128.load(g + o), f32x4.mul(vwd, wv));
    if (useMomentum) {
      const b = f32x4.add(f32x4.mul(vm, v128.load(buf + o)), f32x4.mul(vd, d));
      v128.store(buf + o, b);
      d = nesterov ? f32x4.add(d, f32x4.mul(vm, b)) : b;
    }
    v128.store(w + o, f32x4.sub(wv, f32x4.mul(vlr, d)));
  }
  for (; i < i1; i++) {
    const o = <usize>i * 4;
    const wv = load<f32>(w + o);
    let d = load<f32>(g + o) + weightDecay * wv;
    if (useMomentum) {
      const b = momentum * load<f32>(buf + o) + (1 - dampening) * d;
      store<f32>(buf + o, b);
      d = nesterov ? d + momentum * b : b;
    }
    store<f32>(w + o, wv - lr * d);
  }
}

@inline function dotRow(a: usize, b: usize, n: i32): f64 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + <usize>i * 4), v128.load(b + <usize>i * 4)));
  let s: f64 = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
  for (; i < n; i++) s += <f64>(load<f32>(a + <usize>i * 4) * load<f32>(b + <usize>i * 4));
  return s;
}

/** y[r] = x[r] / max(|x[r]|, eps), norms[r] = |x[r]| for rows [r0, r1). */
export function l2normalizeRows(x: usize, y: usize, norms: usize, cols: i32, eps: f32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>(r * cols) * 4, yr = y + <usize>(r * cols) * 4;
    const norm = Math.sqrt(dotRow(xr, xr, cols));
    store<f32>(norms + <usize>r * 4, <f32>norm);
    const inv = <f32>(1 / Math.max(norm, <f64>eps));
    const vi = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= cols; i += 4) v128.store(yr + <usize>i * 4, f32x4.mul(v128.load(xr + <usize>i * 4), vi));
    for (; i < cols; i++) store<f32>(yr + <usize>i * 4, load<f32>(xr + <usize>i * 4) * inv);
  }
}

/** gradX[r] = (g - (g.y) y) / max(norms[r], eps) for rows [r0, r1). */
export function l2normalizeRowsBackward(g: usize, y: usize, norms: usize, gx: usize, cols: i32, eps: f32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const off = <usize>(r * cols) * 4;
    const norm = <f64>load<f32>(norms + <usize>r * 4);
    // Below eps the forward divided by a constant, so the projection term vanishes.
    const proj = <f32>(norm > <f64>eps ? dotRow(g + off, y + off, cols) : 0);
    const inv = <f32>(1 / Math.max(norm, <f64>eps));
    const vp = f32x4.splat(proj), vi = f32x4.splat(inv);
    let i = 0;
    for (; i + 4 <= cols; i += 4) {
      const o = off + <usize>i * 4;
      v128.store(gx + o, f32x4.mul(f32x4.sub(v128.load(g + o), f32x4.mul(vp, v128.load(y + o))), vi));
    }
    for (; i < cols; i++) {
      const o = off + <usize>i * 4;
      store<f32>(gx + o, (load<f32>(g + o) - proj * load<f32>(y + o)) * inv);
    }
  }
}
