// The per-row bookkeeping of a margin softmax, shared by the margin kernels (assembly/margin.ts,
// assembly/margin-threshold.ts): from the non-target exponentials e_j = exp(a_j - shift) (written
// into the gradient row, their float64 sum `sumOther`), the row's largest logit m and its target
// logit, the probabilities and the log-sum-exp; then the row's last writes. The results of
// `rowProbabilities` are module globals: each thread runs its own instance, so they are its own.

import { narrowHalfRow } from './half';

/** p_j = e_j * rowK for a non-target column. */
export let rowK: f64 = 0;
export let rowPOther: f64 = 0;
export let rowPTarget: f64 = 0;
/** The log-sum-exp the probabilities use: the row's own, or the global one of a sharded head. */
export let rowLogSumExp: f64 = 0;

@inline export function rowProbabilities(sumOther: f64, m: f64, shift: f32, bias: f32, tLogit: f64, has: bool, r: i32, lseOut: usize, globalLse: usize): void {
  // exp(logit_j - m) = e_j * exp(shift - (m - bias)), the second factor rounding only.
  const others = sumOther * Math.exp(<f64>shift + <f64>bias - m);
  const tExp = has ? Math.exp(tLogit - m) : 0;
  const localLse = m + Math.log(others + tExp);
  if (lseOut != 0) store<f32>(lseOut + <usize>r * 4, <f32>localLse);
  const lse = globalLse != 0 ? <f64>load<f32>(globalLse + <usize>r * 4) : localLse;
  rowLogSumExp = lse;
  rowK = Math.exp(<f64>shift + <f64>bias - lse);
  rowPOther = others * Math.exp(m - lse);
  rowPTarget = has ? Math.exp(tLogit - lse) : 0;
}

/** The target column's gradient, the row's loss and d loss / d logit sum, and the float16 gradient row. */
@inline export function finishRow(
  gr: usize, y: i32, has: bool, tLogit: f64, lossScale: f64, targetSlope: usize, r: i32, rowLoss: usize, rowLogitGrad: usize,
  globalLse: usize, halfGrad: usize, cols: i32,
): void {
  if (has) store<f32>(gr + <usize>y * 4, <f32>(lossScale * (rowPTarget - 1) * load<f64>(targetSlope + <usize>r * 8)));
  const loss = has ? rowLogSumExp - tLogit : globalLse != 0 ? 0 : rowLogSumExp;
  store<f32>(rowLoss + <usize>r * 4, <f32>(lossScale * loss));
  store<f32>(rowLogitGrad + <usize>r * 4, <f32>(lossScale * (rowPOther + rowPTarget - (has ? 1 : 0))));
  if (halfGrad != 0) narrowHalfRow(gr, halfGrad + <usize>r * <usize>cols * 2, cols);
}
