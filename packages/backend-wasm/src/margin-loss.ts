/**
 * The fused margin loss on the kernel module: for a transform that declares its non-target half in
 * closed form (`otherLinear` for softmax cross-entropy; `otherLinear` or `otherPower` for the
 * one-vs-all sigmoid; `otherThreshold` for softmax cross-entropy, its per-row threshold evaluated
 * here too), the transform's own functions run for the B target scores here, and the C-wide passes
 * run as SIMD over rows split among the threads (assembly/margin.ts, assembly/margin-sigmoid.ts,
 * assembly/margin-threshold.ts), the row context's gradient included. Float16 logits or gradient
 * are converted there, a row at a time. Transforms without a declaration for the reducer run the
 * reference.
 */
import { BackendError, float16BitsToFloat32, type KernelTable, type MarginLossParams, type MarginTransform, type ThresholdOther } from '@fr/core';
import { checkLinearOther, checkPowerOther, float32Bounds } from './linear-other.js';
import { checkThresholdOther, float32AtOrBelow } from './threshold-other.js';
import { requireFloat32, runParts, splitRange, view, type Runtime, type WasmBuffer } from './runtime.js';

/** Below this many scores the work stays on one thread. */
const THREAD_ELEMENTS = 1 << 16;

type MarginKernels = Pick<KernelTable<WasmBuffer>, 'marginLoss' | 'scaleBy'>;

export function marginKernels(rt: Runtime, reference: KernelTable<WasmBuffer>['marginLoss']): MarginKernels {
  const checked = new WeakSet<MarginTransform>();
  return {
    marginLoss(p) {
      const t = p.transform;
      const declared = p.reducer === 'softmax-ce' ? t.otherLinear ?? t.otherThreshold : t.otherLinear ?? t.otherPower;
      if (!declared) return reference(p);
      // A context gradient needs the context and the transform's context slopes; the reference names what is missing.
      if (p.rowContextGrad && !(p.rowContext && t.contextGradient && t.targetContextGrad && t.otherContextGrad)) return reference(p);
      if (!checked.has(t)) {
        if (t.otherLinear) checkLinearOther(t, t.otherLinear);
        if (t.otherPower) checkPowerOther(t, t.otherPower);
        if (t.otherThreshold) checkThresholdOther(t, t.otherThreshold);
        checked.add(t);
      }
      if (p.reducer === 'softmax-ce') {
        if (t.otherLinear) marginSoftmax(rt, p);
        else marginThresholdSoftmax(rt, p);
      }
      else marginSigmoid(rt, p);
    },
    scaleBy(a, scalar, out, n) {
      for (const b of [a, scalar, out]) requireFloat32(b, 'scaleBy');
      const s = (view(rt, scalar).data as Float32Array)[0];
      runParts(rt, 'scaleBy', splitRange(n, n >= THREAD_ELEMENTS ? rt.threads : 1, 4).map(([i0, i1]) => [a.ptr, s, out.ptr, i0, i1]));
    },
  };
}

/**
 * Pointers of the per-row target block: logit, slope and context slope (float64), column (int32, -1: none here),
 * and the row's threshold as a float32 bound (when `withTargets` is given a threshold).
 */
interface Targets { logit: number; slope: number; ctxSlope: number; column: number; bound: number; bias: number }

/**
 * Computes the B target logits (bias included) and slopes with the transform's own functions, into a heap block for `run`;
 * with `threshold`, each row's too (row.target NaN where the target is in another shard), rounded down to a float32.
 */
function withTargets(rt: Runtime, p: MarginLossParams<WasmBuffer>, run: (targets: Targets) => void, threshold?: ThresholdOther['threshold']): void {
  const { rows, cols, transform: t } = p;
  for (const b of [p.rowLoss, p.rowLogitGrad, p.rowContextGrad]) if (b) requireFloat32(b, 'marginLoss');
  requireDType(p.logits, p.halfLogits ? 'float16' : 'float32', 'halfLogits');
  requireDType(p.grad, p.halfGrad ? 'float16' : 'float32', 'halfGrad');
  const block = rt.heap.alloc(rows * 32, 'marginLoss targets');
  try {
    const buf = rt.memory.buffer;
    const at = { logit: block.ptr, slope: block.ptr + rows * 8, ctxSlope: block.ptr + rows * 16, column: block.ptr + rows * 24, bound: block.ptr + rows * 28 };
    const logit = new Float64Array(buf, at.logit, rows), slope = new Float64Array(buf, at.slope, rows);
    const ctxSlope = new Float64Array(buf, at.ctxSlope, rows), target = new Int32Array(buf, at.column, rows);
    const bound = new Float32Array(buf, at.bound, rows);
    const targetContextGrad = p.rowContextGrad ? t.targetContextGrad! : null;
    const z = view(rt, p.logits).data, labels = view(rt, p.labels).data as Int32Array;
    const score = p.halfLogits ? (i: number) => float16BitsToFloat32(z[i]) : (i: number) => z[i];
    const ctx = p.rowContext ? (view(rt, p.rowContext).data as Float32Array) : null;
    const bias = p.bias ? (view(rt, p.bias).data as Float32Array)[0] : 0;
    for (let r = 0; r < rows; r++) {
      const y = labels[r] - p.classOffset;
      if (y < 0 || y >= cols) {
        target[r] = -1;
        if (threshold) bound[r] = float32AtOrBelow(threshold(t.uniforms, { target: Number.NaN, context: ctx ? ctx[r] : 0 }));
        continue;
      }
      const zy = score(r * cols + y);
      const row = { target: zy, context: ctx ? ctx[r] : 0 };
      target[r] = y;
      logit[r] = t.target(zy, t.uniforms, row) + bias;
      slope[r] = t.targetGrad(zy, t.uniforms, row);
      if (targetContextGrad) ctxSlope[r] = targetContextGrad(zy, t.uniforms, row);
      if (threshold) bound[r] = float32AtOrBelow(threshold(t.uniforms, row));
    }
    run({ ...at, bias });
  } finally {
    rt.heap.release(block.ptr, block.size);
  }
}

function requireDType(b: WasmBuffer, dtype: 'float16' | 'float32', flag: string): void {
  if (b.dtype !== dtype) {
    throw new BackendError(`wasm backend: marginLoss with ${flag} ${dtype === 'float16'} takes ${dtype}, but ${b.label || 'a buffer'} holds ${b.dtype}`);
  }
}

/**
 * Runs `kernel` over the rows, split among the threads; each part gets `args`, then the float16
 * logits and gradient (0: float32, in `args`), a scratch block of two float32 rows (the float16
 * ones widened and the gradient before it is rounded, a row at a time), and its rows [r0, r1).
 */
function runRows(rt: Runtime, p: MarginLossParams<WasmBuffer>, kernel: string, args: number[]): void {
  const threads = p.rows * p.cols >= THREAD_ELEMENTS ? rt.threads : 1;
  const ranges = splitRange(p.rows, threads, 1);
  const half = p.halfLogits || p.halfGrad;
  const rowBytes = p.cols * 8;
  const scratch = half ? rt.heap.alloc(ranges.length * rowBytes, 'marginLoss float16 rows') : null;
  try {
    runParts(rt, kernel, ranges.map(([r0, r1], i) => [
      ...args, p.halfLogits ? p.logits.ptr : 0, p.halfGrad ? p.grad.ptr : 0, scratch ? scratch.ptr + i * rowBytes : 0, r0, r1,
    ]));
  } finally {
    if (scratch) rt.heap.release(scratch.ptr, scratch.size);
  }
}

function marginSoftmax(rt: Runtime, p: MarginLossParams<WasmBuffer>): void {
  const f = p.transform.otherLinear!;
  const [lo, hi] = float32Bounds(f.lo, f.hi);
  withTargets(rt, p, (at) => runRows(rt, p, 'marginSoftmaxRows', [
    p.logits.ptr, p.grad.ptr, p.cols, at.column, at.logit, at.slope,
    f.scale, lo, hi, f.slope, f.slopeOutside, at.bias, p.scale,
    p.rowLoss.ptr, p.rowLogitGrad.ptr, p.rowLogSumExp?.ptr ?? 0, p.globalLogSumExp?.ptr ?? 0,
    at.ctxSlope, p.rowContextGrad?.ptr ?? 0,
  ]));
}

function marginSigmoid(rt: Runtime, p: MarginLossParams<WasmBuffer>): void {
  const t = p.transform;
  // The closed form as the kernel takes it: otherLinear is the unpowered case.
  const f = t.otherLinear
    ? { powered: 0, ...t.otherLinear, inner: 1, shift: 0, power: 1, offset: 0 }
    : { powered: 1, ...t.otherPower! };
  const intPower = Number.isInteger(f.power) && f.power <= 64 ? f.power : 0;
  const [lo, hi] = float32Bounds(f.lo, f.hi);
  withTargets(rt, p, (at) => runRows(rt, p, 'marginSigmoidRows', [
    p.logits.ptr, p.grad.ptr, p.cols, at.column, at.logit, at.slope, at.ctxSlope,
    f.powered, f.scale, lo, hi, f.inner, f.shift, f.power, intPower, f.offset,
    f.slope, f.slopeOutside, at.bias, p.scale, p.positiveWeight, p.negativeWeight,
    p.rowLoss.ptr, p.rowLogitGrad.ptr, p.rowContextGrad?.ptr ?? 0,
  ]));
}

function marginThresholdSoftmax(rt: Runtime, p: MarginLossParams<WasmBuffer>): void {
  const f = p.transform.otherThreshold!;
  if (p.rowContext) requireFloat32(p.rowContext, 'marginLoss');
  const [lo, hi] = float32Bounds(f.lo, f.hi);
  withTargets(rt, p, (at) => runRows(rt, p, 'marginThresholdSoftmaxRows', [
    p.logits.ptr, p.grad.ptr, p.cols, at.column, at.logit, at.slope, at.bound, p.rowContext?.ptr ?? 0,
    f.scale, lo, hi, f.slope, f.slopeOutside, at.bias, p.scale,
    p.rowLoss.ptr, p.rowLogitGrad.ptr, p.rowLogSumExp?.ptr ?? 0, p.globalLogSumExp?.ptr ?? 0,
  ]), f.threshold);
}
