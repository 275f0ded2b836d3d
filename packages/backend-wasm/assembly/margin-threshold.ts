// Softmax cross-entropy of a margin loss whose non-target logits change form above a per-row
// threshold (the transform's `otherThreshold`): with c_j = clamp(z_j, lo, hi) and t the row context,
// a_j = scale * c_j where c_j <= thr_r, scale * (c_j * (t + c_j)) above it; logit_j = a_j + bias.
// The caller computes the B target logits and slopes and the per-row thresholds (TypeScript, the
// transform's own functions); thr_r arrives as the largest float32 at or below the float64
// threshold, so the float32 comparison c > thr_r flips at the scores the float64 one does. Here
// run the C-wide passes, one row at a time, rows [r0, r1) per thread, so a row's result never
// depends on the split. Float32 lanes; row sums in float64.

import { gradRow, scoresRow } from './shared/half';
import { exp4 } from './shared/math';
import { finishRow, rowK, rowProbabilities } from './shared/softmax-row';

@inline function other4(z: v128, s: v128, lo: v128, hi: v128, thr: v128, t: v128): v128 {
  const c = f32x4.min(f32x4.max(z, lo), hi);
  const quadratic = f32x4.mul(s, f32x4.mul(c, f32x4.add(t, c)));
  return v128.bitselect(quadratic, f32x4.mul(s, c), f32x4.gt(c, thr));
}

@inline function other1(z: f32, s: f32, lo: f32, hi: f32, thr: f32, t: f32): f32 {
  const c = min(max(z, lo), hi);
  return c > thr ? s * (c * (t + c)) : s * c;
}

// Largest a_j over [j0, j1).
function maxOther(z: usize, j0: i32, j1: i32, s: f32, lo: f32, hi: f32, thr: f32, t: f32): f32 {
  const vs = f32x4.splat(s), vlo = f32x4.splat(lo), vhi = f32x4.splat(hi), vthr = f32x4.splat(thr), vt = f32x4.splat(t);
  let m = f32x4.splat(-Infinity);
  let j = j0;
  for (; j + 4 <= j1; j += 4) m = f32x4.max(m, other4(v128.load(z + <usize>j * 4), vs, vlo, vhi, vthr, vt));
  let best = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (; j < j1; j++) best = max(best, other1(load<f32>(z + <usize>j * 4), s, lo, hi, thr, t));
  return best;
}

// e_j = exp(a_j - shift) into out[j] for [j0, j1); returns their sum (float64).
function expOther(z: usize, out: usize, j0: i32, j1: i32, s: f32, lo: f32, hi: f32, thr: f32, t: f32, shift: f32): f64 {
  const vs = f32x4.splat(s), vlo = f32x4.splat(lo), vhi = f32x4.splat(hi), vthr = f32x4.splat(thr), vt = f32x4.splat(t);
  const vshift = f32x4.splat(shift);
  let acc0 = f64x2.splat(0), acc1 = f64x2.splat(0);
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const e = exp4(f32x4.sub(other4(v128.load(z + <usize>j * 4), vs, vlo, vhi, vthr, vt), vshift));
    v128.store(out + <usize>j * 4, e);
    acc0 = f64x2.add(acc0, f64x2.promote_low_f32x4(e));
    acc1 = f64x2.add(acc1, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 0, 1)));
  }
  let sum = f64x2.extract_lane(acc0, 0) + f64x2.extract_lane(acc1, 0) + f64x2.extract_lane(acc0, 1) + f64x2.extract_lane(acc1, 1);
  for (; j < j1; j++) {
    // The same exp as the lanes, one lane used.
    const e = f32x4.extract_lane(exp4(f32x4.splat(other1(load<f32>(z + <usize>j * 4), s, lo, hi, thr, t) - shift)), 0);
    store<f32>(out + <usize>j * 4, e);
    sum += <f64>e;
  }
  return sum;
}

// The gradient factor of column j: slopeOutside's outside [lo, hi], else slope's below the
// threshold and scale * (t + 2 c) above it, each times the row's probability scale.
@inline function factor4(z: v128, lo: v128, hi: v128, thr: v128, t: v128, below: v128, outside: v128, above: v128): v128 {
  const c = f32x4.min(f32x4.max(z, lo), hi);
  const inside = v128.and(f32x4.ge(z, lo), f32x4.le(z, hi));
  const quadratic = f32x4.mul(above, f32x4.add(t, f32x4.add(c, c)));
  return v128.bitselect(v128.bitselect(quadratic, below, f32x4.gt(c, thr)), outside, inside);
}

/**
 * Rows [r0, r1) of z (rows x cols), as `marginSoftmaxRows` (assembly/margin.ts) with two per-row
 * inputs more: bound[r] (float32, the row's threshold rounded down to a float32) and, when
 * context != 0, context[r] (float32, t; 0 without). No context gradient: the declaration holds t
 * constant.
 */
export function marginThresholdSoftmaxRows(
  z: usize, grad: usize, cols: i32, target: usize, targetLogit: usize, targetSlope: usize, bound: usize, context: usize,
  s: f32, lo: f32, hi: f32, slope: f32, slopeOutside: f32, bias: f32, lossScale: f64,
  rowLoss: usize, rowLogitGrad: usize, rowLse: usize, globalLse: usize, halfZ: usize, halfGrad: usize, scratch: usize, r0: i32, r1: i32,
): void {
  const vlo = f32x4.splat(lo), vhi = f32x4.splat(hi);
  for (let r = r0; r < r1; r++) {
    const zr = scoresRow(z, halfZ, scratch, r, cols);
    const gr = gradRow(grad, halfGrad, scratch, r, cols);
    const thr = load<f32>(bound + <usize>r * 4);
    const t: f32 = context != 0 ? load<f32>(context + <usize>r * 4) : 0;
    const y = load<i32>(target + <usize>r * 4);
    const has = y >= 0;
    const tLogit = has ? load<f64>(targetLogit + <usize>r * 8) : -Infinity;
    // The target column is left out of the non-target passes (its logit comes from the transform).
    const a0 = has ? y : cols;
    let maxA = maxOther(zr, 0, a0, s, lo, hi, thr, t);
    if (has) maxA = max(maxA, maxOther(zr, y + 1, cols, s, lo, hi, thr, t));
    const m = max(<f64>maxA + <f64>bias, tLogit);
    const shift = <f32>(m - <f64>bias);
    let sumOther = expOther(zr, gr, 0, a0, s, lo, hi, thr, t, shift);
    if (has) sumOther += expOther(zr, gr, y + 1, cols, s, lo, hi, thr, t, shift);
    rowProbabilities(sumOther, m, shift, bias, tLogit, has, r, rowLse, globalLse);
    const k = rowK;
    const below = <f32>(lossScale * <f64>slope * k), outside = <f32>(lossScale * <f64>slopeOutside * k), above = <f32>(lossScale * <f64>s * k);
    const vbelow = f32x4.splat(below), voutside = f32x4.splat(outside), vabove = f32x4.splat(above);
    const vthr = f32x4.splat(thr), vt = f32x4.splat(t);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const o = gr + <usize>j * 4;
      v128.store(o, f32x4.mul(v128.load(o), factor4(v128.load(zr + <usize>j * 4), vlo, vhi, vthr, vt, vbelow, voutside, vabove)));
    }
    for (; j < cols; j++) {
      const f = f32x4.extract_lane(factor4(f32x4.splat(load<f32>(zr + <usize>j * 4)), vlo, vhi, vthr, vt, vbelow, voutside, vabove), 0);
      store<f32>(gr + <usize>j * 4, load<f32>(gr + <usize>j * 4) * f);
    }
    finishRow(gr, y, has, tLogit, lossScale, targetSlope, r, rowLoss, rowLogitGrad, globalLse, halfGrad, cols);
  }
}
