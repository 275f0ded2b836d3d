/**
 * The closed set of kernels every backend implements: a plain object type, so a backend that forgets
 * one fails to compile. Kernels are destination-passing (the op layer allocates outputs and passes
 * shapes), never allocate, never read back. `B` is the buffer handle; sizes count elements, not bytes.
 */
import type { MarginTransform } from './margin.js';

export type UnaryOp = 'neg' | 'relu' | 'exp' | 'log' | 'sqrt' | 'abs' | 'square' | 'tanh' | 'sigmoid';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'reluBackward';

export interface MatmulParams {
  /** op(A) is m x k, op(B) k x n, the output m x n. */
  m: number;
  n: number;
  k: number;
  /** A is stored k x m and read transposed. */
  transA: boolean;
  /** B is stored n x k and read transposed. */
  transB: boolean;
  /** out = alpha * op(A) op(B) + beta * out; beta 0 ignores the old contents (even NaN). */
  alpha: number;
  beta: number;
  /** B is a float16 buffer (read as float32; products and sums stay float32). Default false. */
  halfB?: boolean;
  /** A is a float16 buffer, as B with `halfB`. Default false. */
  halfA?: boolean;
  /** The output is a float16 buffer: alpha * op(A) op(B), summed in float32, rounded to float16. Needs beta 0. */
  halfC?: boolean;
}

export interface Conv2dParams {
  batch: number;
  inChannels: number;
  inHeight: number;
  inWidth: number;
  outChannels: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  groups: number;
  outHeight: number;
  outWidth: number;
}

/** Layout of a per-channel op: x is [outer, channels, inner] (NCHW: outer = N, inner = H*W). */
export interface ChannelLayout {
  outer: number;
  channels: number;
  inner: number;
}

export interface BatchNormParams extends ChannelLayout {
  eps: number;
  /** Training: compute batch statistics into mean/variance (biased). Evaluation: read them. */
  training: boolean;
}

export type Reducer = 'softmax-ce' | 'sigmoid-ova';

export interface MarginLossParams<B> {
  /** Input scores z, rows x cols (usually cosines). */
  logits: B;
  /** int32 labels, one per row, global class ids. */
  labels: B;
  /** Output: d(loss)/dz, rows x cols, already multiplied by `scale`. */
  grad: B;
  /** Output: per-row loss multiplied by `scale`; their sum is the loss. */
  rowLoss: B;
  /** Output: per-row sum of d(loss)/d(logit) multiplied by `scale` (gradient of a shared bias). */
  rowLogitGrad: B;
  /** Optional per-row context value (for example the feature norm), one float per row. */
  rowContext: B | null;
  /** Optional output: per row, scale * sum_j d(loss)/d(logit_j) * d(logit_j)/d(context) (transforms with `contextGradient`). */
  rowContextGrad?: B | null;
  /** Optional scalar bias added to every logit after the transform (SphereFace2). */
  bias: B | null;
  rows: number;
  cols: number;
  /** This buffer holds classes [classOffset, classOffset + cols); labels outside are non-targets here. */
  classOffset: number;
  /** Optional output (softmax-ce): per-row log-sum-exp of this buffer's logits, for sharded heads. */
  rowLogSumExp?: B | null;
  /**
   * Optional input (softmax-ce): per-row log-sum-exp over every shard. When given, probabilities use
   * it, and a row's loss (LSE - target logit) is counted only by the shard that holds the target.
   */
  globalLogSumExp?: B | null;
  transform: MarginTransform;
  reducer: Reducer;
  /** `logits` is a float16 buffer (read as float32). Default false. */
  halfLogits?: boolean;
  /** `grad` is a float16 buffer: the gradient is computed in float32 and stored rounded to float16. Default false. */
  halfGrad?: boolean;
  /** sigmoid-ova: weight of the target term and of each non-target term. Ignored for softmax-ce. */
  positiveWeight: number;
  negativeWeight: number;
  scale: number;
}

export interface SgdParams {
  n: number;
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export interface AdamWParams {
  n: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
}

export interface KernelTable<B> {
  /** out[0..n) = value */
  fill(out: B, n: number, value: number): void;
  /** dst[dstOffset + i] = src[srcOffset + i] for i < n */
  copy(src: B, dst: B, n: number, srcOffset: number, dstOffset: number): void;
  /** out = alpha * op(A) op(B) + beta * out, all row-major. */
  matmul(a: B, b: B, out: B, p: MatmulParams): void;
  /** dst[i] = float16(src[i]) for i < n: a float32 buffer into a float16 one (nearest value). */
  toFloat16(src: B, dst: B, n: number): void;
  /** dst[i] = float32(src[i]) for i < n: a float16 buffer into a float32 one (exact). */
  fromFloat16(src: B, dst: B, n: number): void;
  /** out[i] = f(a[i]) */
  unary(op: UnaryOp, a: B, out: B, n: number): void;
  /** out[i] = a[i] op b[i]; reluBackward: a is the upstream gradient, b the relu input. */
  binary(op: BinaryOp, a: B, b: B, out: B, n: number): void;
  /** out[i] = alpha * a[i] + beta * b[i] */
  axpby(a: B, b: B, out: B, n: number, alpha: number, beta: number): void;
  /** out[i] = a[i] * scalar[0], the scalar read from a device buffer (no readback). */
  scaleBy(a: B, scalar: B, out: B, n: number): void;
  /** out[i] = alpha * a[i] + beta */
  affine(a: B, out: B, n: number, alpha: number, beta: number): void;
  /** out[r, c] = x[r, c] + v[c] */
  addRowVector(x: B, v: B, out: B, rows: number, cols: number): void;
  /** axis 0: out[c] = sum_r x[r, c]; axis 1: out[r] = sum_c x[r, c]. */
  reduceSum(x: B, out: B, rows: number, cols: number, axis: 0 | 1): void;
  /** out[0] = sum_i x[i]^2, any n. */
  sumSquares(x: B, out: B, n: number): void;
  /** y[r] = x[r] / max(|x[r]|, eps); norms[r] = |x[r]| (unclamped). */
  l2normalizeRows(x: B, y: B, norms: B, rows: number, cols: number, eps: number): void;
  /** gradX[r] = (g - (g.y) y) / max(norms[r], eps) */
  l2normalizeRowsBackward(gradY: B, y: B, norms: B, gradX: B, rows: number, cols: number, eps: number): void;
  /** out (rows x width) = x[:, start:start+width] of x (rows x cols). */
  sliceCols(x: B, out: B, rows: number, cols: number, start: number, width: number): void;
  /** out[:, start:start+width] (+)= x; out is rows x cols, x is rows x width. */
  scatterCols(x: B, out: B, rows: number, cols: number, start: number, width: number, accumulate: boolean): void;
  /** out[i] = x[index[i]] (rows of width cols); index is int32. */
  gatherRows(x: B, index: B, out: B, count: number, cols: number): void;
  /** out[index[i]] += x[i] (rows of width cols). Indices must be unique. */
  scatterAddRows(x: B, index: B, out: B, count: number, cols: number): void;
  /** PReLU with one slope per channel. */
  prelu(x: B, slope: B, out: B, p: ChannelLayout): void;
  preluBackward(gradOut: B, x: B, slope: B, gradX: B, gradSlope: B, p: ChannelLayout): void;
  /** The fused classifier: transform, reduction, loss and d(loss)/dz in one pass per row. */
  marginLoss(p: MarginLossParams<B>): void;
  /**
   * Sub-center max: out[r, g] = max_k x[r, g*size + k]; index[r*groups + g] (int32) is the flat position
   * in x of the first maximum (the backward, `groupMaxBackward`, serves every tied maximum instead).
   */
  groupMax(x: B, out: B, index: B, rows: number, groups: number, size: number): void;
  /** Its backward with ties: gradX[i] = x[i] == out[its group] ? gradOut[its group] : 0 (written, not added). */
  groupMaxBackward(x: B, out: B, gradOut: B, gradX: B, rows: number, groups: number, size: number): void;
  /** One SGD step in place (PyTorch semantics: weight decay added to the gradient). */
  sgdStep(param: B, grad: B, momentumBuffer: B, p: SgdParams): void;
  /** One AdamW step in place (decoupled weight decay). */
  adamwStep(param: B, grad: B, m: B, v: B, p: AdamWParams): void;
  /** Direct convolution, NCHW input, OIHW weights (I = inChannels / groups). */
  conv2d(x: B, w: B, out: B, p: Conv2dParams): void;
  conv2dBackwardInput(gradOut: B, w: B, gradX: B, p: Conv2dParams): void;
  conv2dBackwardWeight(gradOut: B, x: B, gradW: B, p: Conv2dParams): void;
  /** Batch normalisation; training writes the batch mean and biased variance into mean/variance first, evaluation reads them. */
  batchNorm(x: B, gamma: B, beta: B, mean: B, variance: B, out: B, p: BatchNormParams): void;
  /** Backward of batchNorm with the statistics it used (training: through the batch statistics). */
  batchNormBackward(gradOut: B, x: B, gamma: B, mean: B, variance: B, gradX: B, gradGamma: B, gradBeta: B, p: BatchNormParams): void;
  /** mask[i] = (uniform(seed, i) >= p) / (1 - p); out = x * mask. Deterministic for a seed. */
  dropout(x: B, out: B, mask: B, n: number, p: number, seed: number): void;
  /** out[o, c] = mean over inner of x[o, c, :] */
  globalAvgPool(x: B, out: B, p: ChannelLayout): void;
  globalAvgPoolBackward(gradOut: B, gradX: B, p: ChannelLayout): void;
}

export type KernelName = keyof KernelTable<unknown>;
