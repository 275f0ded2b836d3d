// Softmax cross-entropy of a margin loss whose non-target logits are a clamped scaling of the
// scores (the transform's `otherLinear`): a_j = scale * clamp(z_j, lo, hi), logit_j = a_j + bias.
// The caller computes the B target logits and slopes (TypeScript, the transform's own functions)
// and passes them in; here run the C-wide passes, one row at a time, rows [r0, r1) per thread, so
// a row's result never depends on the split. Float32 lanes; row sums in float64.

import { gradRow, narrowHalfRow, scoresRow, widenHalfRow } from './shared/half';
// Exported for their exhaustive test (src/half-rows.test.ts).
export { narrowHalfRow, widenHalfRow };
import { exp4 } from './shared/math';
import { finishRow, rowK, rowPTarget, rowProbabilities } from './shared/softmax-row';

@inline function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

@inline function other4(z: v128, s: v128, lo: v128, hi: v128): v128 {
  return f32x4.mul(s, f32x4.min(f32x4.max(z, lo), hi));
}

@inline function other1(z: f32, s: f32, lo: f32, hi: f32): f32 {
  return s * min(max(z, lo), hi);
}

// Largest a_j over [j0, j1).
function maxOther(z: usize, j0: i32, j1: i32, s: f32, lo: f32, hi: f32): f32 {
  const vs = f32x4.splat(s), vlo = f32x4.splat(lo), vhi = f32x4.splat(hi);
  let m = f32x4.splat(-Infinity);
  let j = j0;
  for (; j + 4 <= j1; j += 4) m = f32x4.max(m, other4(v128.load(z + <usize>j * 4), vs, vlo, vhi));
  let best = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (; j < j1; j++) best = max(best, other1(load<f32>(z + <usize>j * 4), s, lo, hi));
  return best;
}

// e_j = exp(a_j - shift) into out[j] for [j0, j1); returns their sum (float64).
function expOther(z: usize, out: usize, j0: i32, j1: i32, s: f32, lo: f32, hi: f32, shift: f32): f64 {
  const vs = f32x4.splat(s), vlo = f32x4.splat(lo), vhi = f32x4.splat(hi), vshift = f32x4.splat(shift);
  let acc0 = f64x2.splat(0), acc1 = f64x2.splat(0);
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const e = exp4(f32x4.sub(other4(v128.load(z + <usize>j * 4), vs, vlo, vhi), vshift));
    v128.store(out + <usize>j * 4, e);
    acc0 = f64x2.add(acc0, f64x2.promote_low_f32x4(e));
    acc1 = f64x2.add(acc1, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 0, 1)));
  }
  let sum = f64x2.extract_lane(acc0, 0) + f64x2.extract_lane(acc1, 0) + f64x2.extract_lane(acc0, 1) + f64x2.extract_lane(acc1, 1);
  for (; j < j1; j++) {
    const e = exp1(other1(load<f32>(z + <usize>j * 4), s, lo, hi) - shift);
    store<f32>(out + <usize>j * 4, e);
    sum += <f64>e;
  }
  return sum;
}

/**
 * Rows [r0, r1) of z (rows x cols): target[r] (int32, -1: no target in this buffer), targetLogit[r]
 * and targetSlope[r] (float64, bias included in the logit). Writes grad (already times lossScale),
 * rowLoss, rowLogitGrad and, when rowLse != 0, the row's log-sum-exp; when globalLse != 0 the
 * probabilities use it (sharded heads). When rowCtxGrad != 0, writes the row context's gradient
 * from targetCtxSlope[r] (float64, d target logit / d context): the declared non-target logits do
 * not depend on the context, so the target column is its only term. halfZ / halfGrad != 0: the
 * logits / gradient are float16 there (z / grad unused), a row at a time through `scratch` (two rows of float32).
 */
export function marginSoftmaxRows(
  z: usize, grad: usize, cols: i32, target: usize, targetLogit: usize, targetSlope: usize,
  s: f32, lo: f32, hi: f32, slope: f32, slopeOutside: f32, bias: f32, lossScale: f64,
  rowLoss: usize, rowLogitGrad: usize, rowLse: usize, globalLse: usize, targetCtxSlope: usize, rowCtxGrad: usize, halfZ: usize, halfGrad: usize, scratch: usize, r0: i32, r1: i32,
): void {
  const vlo = f32x4.splat(lo), vhi = f32x4.splat(hi);
  const uniformSlope = slope == slopeOutside;
  for (let r = r0; r < r1; r++) {
    const zr = scoresRow(z, halfZ, scratch, r, cols);
    const gr = gradRow(grad, halfGrad, scratch, r, cols);
    const y = load<i32>(target + <usize>r * 4);
    const has = y >= 0;
    const tLogit = has ? load<f64>(targetLogit + <usize>r * 8) : -Infinity;
    // The target column is left out of the non-target passes (its logit comes from the transform).
    const a0 = has ? y : cols;
    let maxA = maxOther(zr, 0, a0, s, lo, hi);
    if (has) maxA = max(maxA, maxOther(zr, y + 1, cols, s, lo, hi));
    const m = max(<f64>maxA + <f64>bias, tLogit);
    const shift = <f32>(m - <f64>bias);
    let sumOther = expOther(zr, gr, 0, a0, s, lo, hi, shift);
    if (has) sumOther += expOther(zr, gr, y + 1, cols, s, lo, hi, shift);
    rowProbabilities(sumOther, m, shift, bias, tLogit, has, r, rowLse, globalLse);
    const k = rowK;
    const factor = <f32>(lossScale * <f64>slope * k);
    const vf = f32x4.splat(factor);
    const factorOut = <f32>(lossScale * <f64>slopeOutside * k);
    const vfo = f32x4.splat(factorOut);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const o = gr + <usize>j * 4;
      const e = v128.load(o);
      if (uniformSlope) {
        v128.store(o, f32x4.mul(e, vf));
      } else {
        const zv = v128.load(zr + <usize>j * 4);
        const inside = v128.and(f32x4.ge(zv, vlo), f32x4.le(zv, vhi));
        v128.store(o, f32x4.mul(e, v128.bitselect(vf, vfo, inside)));
      }
    }
    for (; j < cols; j++) {
      const zj = load<f32>(zr + <usize>j * 4);
      const f = zj >= lo && zj <= hi ? factor : factorOut;
      store<f32>(gr + <usize>j * 4, load<f32>(gr + <usize>j * 4) * f);
    }
    finishRow(gr, y, has, tLogit, lossScale, targetSlope, r, rowLoss, rowLogitGrad, globalLse, halfGrad, cols);
    if (rowCtxGrad != 0) {
      const ctxGrad = has ? lossScale * ((rowPTarget - 1) * load<f64>(targetCtxSlope + <usize>r * 8)) : 0;
      store<f32>(rowCtxGrad + <usize>r * 4, <f32>ctxGrad);
    }
  }
}

/** out[i] = a[i] * s over [i0, i1) (the float32 product, as the reference rounds it). */
export function scaleBy(a: usize, s: f32, out: usize, i0: i32, i1: i32): void {
  const vs = f32x4.splat(s);
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(out + <usize>i * 4, f32x4.mul(v128.load(a + <usize>i * 4), vs));
  for (; i < i1; i++) store<f32>(out + <usize>i * 4, load<f32>(a + <usize>i * 4) * s);
}
