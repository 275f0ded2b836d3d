// One-vs-all sigmoid loss of a margin loss (SphereFace2) whose non-target logits the transform
// declares in closed form: a_j = scale * clamp(z_j, lo, hi) (`otherLinear`, powered == 0) or
// a_j = scale * max(inner * clamp(z_j, lo, hi) + shift, 0)^power + offset (`otherPower`), and
// logit_j = a_j + bias. Each non-target column adds negativeWeight softplus(logit_j) to the loss
// and negativeWeight sigmoid(logit_j) to d loss / d logit_j; the target column (its logit computed
// by the caller, in float64) positiveWeight softplus(-logit_y) and -positiveWeight sigmoid(-logit_y).
// One row at a time, rows [r0, r1) per thread, so a row's result never depends on the split.
// Float32 lanes; row sums in float64.

import { gradRow, narrowHalfRow, scoresRow } from './shared/half';
import { exp4, log4, powi4 } from './shared/math';

// The closed form of this call (the same for every row), set by marginSigmoidRows.
let sLo: v128, sHi: v128, sScale: v128, sInner: v128, sShift: v128, sPower: v128, sOffset: v128, sBias: v128;
let sPowered: bool, sIntPower: i32;
// Sums of a range (softplus terms, sigmoid terms), read by the row after sigmoidRange.
let sumSoftplus: f64, sumSigmoid: f64;

// The logit of scores z; the form's constants come in as locals (the loop keeps them in registers).
@inline function logit4(z: v128, lo: v128, hi: v128, scale: v128, inner: v128, shift: v128, power: v128, offset: v128, bias: v128, powered: bool, intPower: i32): v128 {
  const c = f32x4.min(f32x4.max(z, lo), hi);
  if (!powered) return f32x4.add(f32x4.mul(scale, c), bias);
  const u = f32x4.max(f32x4.add(f32x4.mul(inner, c), shift), f32x4.splat(0));
  // u^power: binary powering for a whole power (SphereFace2's t = 3), exp(power log u) otherwise.
  let pw: v128;
  if (intPower > 0) {
    pw = powi4(u, intPower);
  } else {
    const positive = f32x4.gt(u, f32x4.splat(0));
    pw = v128.and(exp4(f32x4.mul(power, log4(v128.bitselect(u, f32x4.splat(1), positive)))), positive);
  }
  return f32x4.add(f32x4.add(f32x4.mul(scale, pw), offset), bias);
}

// e = exp(-|x|), u = 1 + e: sigmoid(x) = 1 / u for x >= 0, e / u below; softplus(x) = max(x, 0) +
// log1p(e), with log1p(e) = log(u) + (e - (u - 1)) / u correcting the rounding of u (a tiny e keeps
// its value instead of vanishing into 1). One division for both.
@inline function expNegAbs4(x: v128): v128 {
  return exp4(f32x4.neg(f32x4.abs(x)));
}
@inline function onePlus4(e: v128): v128 {
  return f32x4.add(e, f32x4.splat(1));
}
@inline function sigmoid4(x: v128, e: v128, inv: v128): v128 {
  return f32x4.mul(v128.bitselect(f32x4.splat(1), e, f32x4.ge(x, f32x4.splat(0))), inv);
}
@inline function softplus4(x: v128, e: v128, u: v128, inv: v128): v128 {
  const rounding = f32x4.mul(f32x4.sub(e, f32x4.sub(u, f32x4.splat(1))), inv);
  return f32x4.add(f32x4.max(x, f32x4.splat(0)), f32x4.add(log4(u), rounding));
}

@inline function addLanes(a0: v128, a1: v128): f64 {
  return f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a0, 1) + f64x2.extract_lane(a1, 1);
}

// Non-target columns [j0, j1) of a row: grad_j = sigmoid(logit_j) * (factor inside [lo, hi],
// factorOut outside); the softplus and sigmoid sums into sumSoftplus and sumSigmoid.
function sigmoidRange(zr: usize, gr: usize, j0: i32, j1: i32, factor: f32, factorOut: f32, uniformSlope: bool): void {
  const vf = f32x4.splat(factor), vfo = f32x4.splat(factorOut);
  const lo = sLo, hi = sHi, scale = sScale, inner = sInner, shift = sShift, power = sPower, offset = sOffset, bias = sBias;
  const powered = sPowered, intPower = sIntPower;
  let sp0 = f64x2.splat(0), sp1 = f64x2.splat(0), sg0 = f64x2.splat(0), sg1 = f64x2.splat(0);
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const zv = v128.load(zr + <usize>j * 4);
    const x = logit4(zv, lo, hi, scale, inner, shift, power, offset, bias, powered, intPower);
    const e = expNegAbs4(x), u = onePlus4(e), inv = f32x4.div(f32x4.splat(1), u);
    const sp = softplus4(x, e, u, inv), sg = sigmoid4(x, e, inv);
    const f = uniformSlope ? vf : v128.bitselect(vf, vfo, v128.and(f32x4.ge(zv, lo), f32x4.le(zv, hi)));
    v128.store(gr + <usize>j * 4, f32x4.mul(sg, f));
    sp0 = f64x2.add(sp0, f64x2.promote_low_f32x4(sp));
    sp1 = f64x2.add(sp1, f64x2.promote_low_f32x4(v128.shuffle<f32>(sp, sp, 2, 3, 0, 1)));
    sg0 = f64x2.add(sg0, f64x2.promote_low_f32x4(sg));
    sg1 = f64x2.add(sg1, f64x2.promote_low_f32x4(v128.shuffle<f32>(sg, sg, 2, 3, 0, 1)));
  }
  let spSum = addLanes(sp0, sp1), sgSum = addLanes(sg0, sg1);
  for (; j < j1; j++) {
    const zj = load<f32>(zr + <usize>j * 4);
    const x = logit4(f32x4.splat(zj), lo, hi, scale, inner, shift, power, offset, bias, powered, intPower);
    const e = expNegAbs4(x), u = onePlus4(e), inv = f32x4.div(f32x4.splat(1), u);
    const sg = f32x4.extract_lane(sigmoid4(x, e, inv), 0);
    store<f32>(gr + <usize>j * 4, sg * (uniformSlope || (zj >= f32x4.extract_lane(lo, 0) && zj <= f32x4.extract_lane(hi, 0)) ? factor : factorOut));
    spSum += <f64>f32x4.extract_lane(softplus4(x, e, u, inv), 0);
    sgSum += <f64>sg;
  }
  sumSoftplus += spSum;
  sumSigmoid += sgSum;
}

/**
 * Rows [r0, r1) of z (rows x cols): target[r] (int32, -1: no target in this buffer), targetLogit[r]
 * (bias included), targetSlope[r] and targetCtxSlope[r] (float64). Writes grad (times lossScale),
 * rowLoss, rowLogitGrad and, when rowCtxGrad != 0, the row context's gradient (the declared
 * non-target logits do not depend on the context: the target column is its only term).
 * intPower > 0: power is that whole number. halfZ / halfGrad != 0: the logits / gradient are
 * float16 there (z / grad unused), a row at a time through `scratch` (two rows of float32).
 */
export function marginSigmoidRows(
  z: usize, grad: usize, cols: i32, target: usize, targetLogit: usize, targetSlope: usize, targetCtxSlope: usize,
  powered: i32, scale: f32, lo: f32, hi: f32, inner: f32, shift: f32, power: f32, intPower: i32, offset: f32,
  slope: f32, slopeOutside: f32, bias: f32, lossScale: f64, positiveWeight: f64, negativeWeight: f64,
  rowLoss: usize, rowLogitGrad: usize, rowCtxGrad: usize, halfZ: usize, halfGrad: usize, scratch: usize, r0: i32, r1: i32,
): void {
  sLo = f32x4.splat(lo); sHi = f32x4.splat(hi); sScale = f32x4.splat(scale); sInner = f32x4.splat(inner);
  sShift = f32x4.splat(shift); sPower = f32x4.splat(power); sOffset = f32x4.splat(offset); sBias = f32x4.splat(bias);
  sPowered = powered != 0;
  sIntPower = intPower;
  const uniformSlope = slope == slopeOutside;
  const factor = <f32>(lossScale * negativeWeight * <f64>slope), factorOut = <f32>(lossScale * negativeWeight * <f64>slopeOutside);
  for (let r = r0; r < r1; r++) {
    const zr = scoresRow(z, halfZ, scratch, r, cols);
    const gr = gradRow(grad, halfGrad, scratch, r, cols);
    const y = load<i32>(target + <usize>r * 4);
    const has = y >= 0;
    sumSoftplus = 0;
    sumSigmoid = 0;
    sigmoidRange(zr, gr, 0, has ? y : cols, factor, factorOut, uniformSlope);
    if (has) sigmoidRange(zr, gr, y + 1, cols, factor, factorOut, uniformSlope);
    let loss = negativeWeight * sumSoftplus, logitGrad = negativeWeight * sumSigmoid;
    if (has) {
      // softplus(-x) and -sigmoid(-x) of the target logit in float64.
      const x = load<f64>(targetLogit + <usize>r * 8);
      const e = Math.exp(-Math.abs(x));
      const dl = -positiveWeight * (x >= 0 ? e / (1 + e) : 1 / (1 + e));
      loss += positiveWeight * (Math.max(-x, 0) + Math.log1p(e));
      logitGrad += dl;
      store<f32>(gr + <usize>y * 4, <f32>(lossScale * dl * load<f64>(targetSlope + <usize>r * 8)));
      if (rowCtxGrad != 0) store<f32>(rowCtxGrad + <usize>r * 4, <f32>(lossScale * (dl * load<f64>(targetCtxSlope + <usize>r * 8))));
    } else if (rowCtxGrad != 0) {
      store<f32>(rowCtxGrad + <usize>r * 4, 0);
    }
    if (halfGrad != 0) narrowHalfRow(gr, halfGrad + <usize>r * <usize>cols * 2, cols);
    store<f32>(rowLoss + <usize>r * 4, <f32>(lossScale * loss));
    store<f32>(rowLogitGrad + <usize>r * 4, <f32>(lossScale * logitGrad));
  }
}
