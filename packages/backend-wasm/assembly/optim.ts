// AdamW over [i0, i1) in float64 lanes, the reference's operations in its order: every element is
// the same IEEE computation as the TypeScript reference (f32 loads widened, f32 stores rounded), so
// the results are bit for bit the reference's, whatever the split.

@inline function load2(p: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p));
}

@inline function store2(p: usize, v: v128): void {
  v128.store64_lane(p, f32x4.demote_f64x2_zero(v), 0);
}

/**
 * w = f32(w (1 - lr wd)); m = f32(b1 m + (1 - b1) g); v = f32(b2 v + (1 - b2) g g);
 * w = f32(w - lr (m / c1) / (sqrt(v / c2) + eps)).
 */
export function adamwStep(w: usize, g: usize, m: usize, v: usize, lr: f64, beta1: f64, beta2: f64, eps: f64, weightDecay: f64, c1: f64, c2: f64, i0: i32, i1: i32): void {
  const decay = 1 - lr * weightDecay, keep1 = 1 - beta1, keep2 = 1 - beta2;
  const vDecay = f64x2.splat(decay), vb1 = f64x2.splat(beta1), vk1 = f64x2.splat(keep1), vb2 = f64x2.splat(beta2), vk2 = f64x2.splat(keep2);
  const vlr = f64x2.splat(lr), vc1 = f64x2.splat(c1), vc2 = f64x2.splat(c2), veps = f64x2.splat(eps);
  let i = i0;
  for (; i + 2 <= i1; i += 2) {
    const o = <usize>i * 4;
    // Each f32 store rounds, and the next use reads the rounded value, as the reference does.
    const wd = f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(f64x2.mul(load2(w + o), vDecay)));
    const gv = load2(g + o);
    const mv = f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(vb1, load2(m + o)), f64x2.mul(vk1, gv))));
    const vv = f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(vb2, load2(v + o)), f64x2.mul(f64x2.mul(vk2, gv), gv))));
    store2(m + o, mv);
    store2(v + o, vv);
    const step = f64x2.div(f64x2.mul(vlr, f64x2.div(mv, vc1)), f64x2.add(f64x2.sqrt(f64x2.div(vv, vc2)), veps));
    store2(w + o, f64x2.sub(wd, step));
  }
  for (; i < i1; i++) {
    const o = <usize>i * 4;
    const wd = <f64><f32>(<f64>load<f32>(w + o) * decay);
    const gv = <f64>load<f32>(g + o);
    const mv = <f64><f32>(beta1 * <f64>load<f32>(m + o) + keep1 * gv);
    const vv = <f64><f32>(beta2 * <f64>load<f32>(v + o) + keep2 * gv * gv);
    store<f32>(m + o, <f32>mv);
    store<f32>(v + o, <f32>vv);
    store<f32>(w + o, <f32>(wd - (lr * (mv / c1)) / (Math.sqrt(vv / c2) + eps)));
  }
}

/**
 * Sums of x (rows x cols) along axis 0 for columns [c0, c1): per column the reference's order
 * (rows in turn, float64), two columns per lane pair.
 */
export function reduceSumColumns(x: usize, out: usize, rows: i32, cols: i32, c0: i32, c1: i32): void {
  let c = c0;
  for (; c + 2 <= c1; c += 2) {
    let acc = f64x2.splat(0);
    for (let r = 0; r < rows; r++) acc = f64x2.add(acc, load2(x + (<usize>r * cols + c) * 4));
    store2(out + <usize>c * 4, acc);
  }
  for (; c < c1; c++) {
    let acc: f64 = 0;
    for (let r = 0; r < rows; r++) acc += <f64>load<f32>(x + (<usize>r * cols + c) * 4);
    store<f32>(out + <usize>c * 4, <f32>acc);
  }
}

/** Sums of x (rows x cols) along axis 1 for rows [r0, r1): the reference's order (columns in turn, float64). */
export function reduceSumRows(x: usize, out: usize, cols: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const row = x + <usize>r * cols * 4;
    let acc: f64 = 0;
    for (let c = 0; c < cols; c++) acc += <f64>load<f32>(row + <usize>c * 4);
    store<f32>(out + <usize>r * 4, <f32>acc);
  }
}
