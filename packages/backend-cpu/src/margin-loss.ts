import { BackendError, convertFromFloat16, convertToFloat16, type MarginLossParams, type RowContext } from '@fr/core';
import { f16, f32, i32, type CpuBuffer } from './buffer.js';

/** log(1 + e^x) without overflow. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/**
 * The fused classifier, one row at a time: transform every score, reduce (softmax cross-entropy or
 * one-vs-all sigmoid), write the row loss and d(loss)/dz. Only one row of logits is ever held.
 */
export function marginLoss(p: MarginLossParams<CpuBuffer>): void {
  const { rows, cols, transform: t, scale, classOffset } = p;
  // Float16 logits and gradients are converted a row at a time, so no float32 copy of the matrix exists.
  const z16 = p.halfLogits ? f16(p.logits) : null;
  const z = z16 ? null : f32(p.logits);
  const labels = i32(p.labels);
  const grad16 = p.halfGrad ? f16(p.grad) : null;
  const grad = grad16 ? null : f32(p.grad);
  const zRow = z16 ? new Float32Array(cols) : null;
  const gradRow = grad16 ? new Float32Array(cols) : null;
  const rowLoss = f32(p.rowLoss);
  const rowLogitGrad = f32(p.rowLogitGrad);
  const ctx = p.rowContext ? f32(p.rowContext) : null;
  const bias = p.bias ? f32(p.bias)[0] : 0;
  const rowLse = p.rowLogSumExp ? f32(p.rowLogSumExp) : null;
  const globalLse = p.globalLogSumExp ? f32(p.globalLogSumExp) : null;
  const ctxGradOut = p.rowContextGrad ? f32(p.rowContextGrad) : null;
  if (ctxGradOut && !(ctx && t.contextGradient && t.targetContextGrad && t.otherContextGrad)) {
    throw new BackendError(`marginLoss: rowContextGrad needs a row context and a transform with contextGradient (${t.key} has ${t.contextGradient ? 'it' : 'none'})`);
  }
  const u = t.uniforms;
  const logits = new Float64Array(cols);
  const slopes = new Float64Array(cols);
  // d logit / d context per column, only when the context gradient is asked for.
  const ctxSlopes = ctxGradOut ? new Float64Array(cols) : null;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let zr: Float32Array;
    if (zRow) {
      convertFromFloat16(z16!.subarray(base, base + cols), zRow, cols);
      zr = zRow;
    } else {
      zr = z!.subarray(base, base + cols);
    }
    const gr = gradRow ?? grad!.subarray(base, base + cols);
    const y = labels[r] - classOffset;
    const hasTarget = y >= 0 && y < cols;
    const row: RowContext = { target: hasTarget ? zr[y] : NaN, context: ctx ? ctx[r] : 0 };
    for (let j = 0; j < cols; j++) {
      const zj = zr[j];
      if (j === y) {
        logits[j] = t.target(zj, u, row) + bias;
        slopes[j] = t.targetGrad(zj, u, row);
        if (ctxSlopes) ctxSlopes[j] = t.targetContextGrad!(zj, u, row);
      } else {
        logits[j] = t.other(zj, u, row) + bias;
        slopes[j] = t.otherGrad(zj, u, row);
        if (ctxSlopes) ctxSlopes[j] = t.otherContextGrad!(zj, u, row);
      }
    }
    let ctxGradSum = 0;
    let loss = 0;
    let logitGradSum = 0;
    if (p.reducer === 'softmax-ce') {
      let max = -Infinity;
      for (let j = 0; j < cols; j++) if (logits[j] > max) max = logits[j];
      let sum = 0;
      for (let j = 0; j < cols; j++) sum += Math.exp(logits[j] - max);
      const localLse = max + Math.log(sum);
      if (rowLse) rowLse[r] = localLse;
      const lse = globalLse ? globalLse[r] : localLse;
      loss = hasTarget ? lse - logits[y] : globalLse ? 0 : lse;
      for (let j = 0; j < cols; j++) {
        const dl = Math.exp(logits[j] - lse) - (j === y ? 1 : 0);
        logitGradSum += dl;
        if (ctxSlopes) ctxGradSum += dl * ctxSlopes[j];
        gr[j] = scale * dl * slopes[j];
      }
    } else {
      for (let j = 0; j < cols; j++) {
        let dl: number;
        if (j === y) {
          loss += p.positiveWeight * softplus(-logits[j]);
          dl = -p.positiveWeight * sigmoid(-logits[j]);
        } else {
          loss += p.negativeWeight * softplus(logits[j]);
          dl = p.negativeWeight * sigmoid(logits[j]);
        }
        logitGradSum += dl;
        if (ctxSlopes) ctxGradSum += dl * ctxSlopes[j];
        gr[j] = scale * dl * slopes[j];
      }
    }
    if (gradRow) convertToFloat16(gradRow, grad16!.subarray(base, base + cols), cols);
    rowLoss[r] = scale * loss;
    rowLogitGrad[r] = scale * logitGradSum;
    if (ctxGradOut) ctxGradOut[r] = scale * ctxGradSum;
  }
}
