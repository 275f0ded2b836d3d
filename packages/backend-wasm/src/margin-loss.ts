/**
 * The fused margin loss on the kernel module: for softmax cross-entropy with a transform that
 * declares its non-target half in closed form (`otherLinear`), the transform's own functions run
 * for the B target scores here, and the C-wide max, exp-sum and gradient passes run as SIMD over
 * rows split among the threads (assembly/margin.ts). Everything else (sigmoid-ova, float16 logits
 * or gradient, a context gradient, transforms without the declaration) runs the reference.
 */
import type { KernelTable, MarginLossParams, MarginTransform } from '@fr/core';
import { checkLinearOther, float32Bounds } from './linear-other.js';
import { requireFloat32, runParts, splitRange, view, type Runtime, type WasmBuffer } from './runtime.js';

/** Below this many scores the work stays on one thread. */
const THREAD_ELEMENTS = 1 << 16;

type MarginKernels = Pick<KernelTable<WasmBuffer>, 'marginLoss' | 'scaleBy'>;

export function marginKernels(rt: Runtime, reference: KernelTable<WasmBuffer>['marginLoss']): MarginKernels {
  const checked = new WeakSet<MarginTransform>();
  return {
    marginLoss(p) {
      const f = p.transform.otherLinear;
      if (!f || p.reducer !== 'softmax-ce' || p.halfLogits || p.halfGrad) return reference(p);
      // A context gradient needs the context and the transform's targetContextGrad; the reference names what is missing.
      if (p.rowContextGrad && !(p.rowContext && p.transform.contextGradient && p.transform.targetContextGrad)) return reference(p);
      if (!checked.has(p.transform)) {
        checkLinearOther(p.transform, f);
        checked.add(p.transform);
      }
      marginSoftmax(rt, p);
    },
    scaleBy(a, scalar, out, n) {
      for (const b of [a, scalar, out]) requireFloat32(b, 'scaleBy');
      const s = (view(rt, scalar).data as Float32Array)[0];
      runParts(rt, 'scaleBy', splitRange(n, n >= THREAD_ELEMENTS ? rt.threads : 1, 4).map(([i0, i1]) => [a.ptr, s, out.ptr, i0, i1]));
    },
  };
}

function marginSoftmax(rt: Runtime, p: MarginLossParams<WasmBuffer>): void {
  const { rows, cols, transform: t } = p;
  const f = t.otherLinear!;
  for (const b of [p.logits, p.grad, p.rowLoss, p.rowLogitGrad]) requireFloat32(b, 'marginLoss');
  if (p.rowContextGrad) requireFloat32(p.rowContextGrad, 'marginLoss');
  // Per row: target logit, slope and context slope (float64), then the target column (int32, -1: none here).
  const block = rt.heap.alloc(rows * 28, 'marginLoss targets');
  try {
    const buf = rt.memory.buffer;
    const logit = new Float64Array(buf, block.ptr, rows), slope = new Float64Array(buf, block.ptr + rows * 8, rows);
    const ctxSlope = new Float64Array(buf, block.ptr + rows * 16, rows);
    const target = new Int32Array(buf, block.ptr + rows * 24, rows);
    const targetContextGrad = p.rowContextGrad ? t.targetContextGrad! : null;
    const z = view(rt, p.logits).data as Float32Array, labels = view(rt, p.labels).data as Int32Array;
    const ctx = p.rowContext ? (view(rt, p.rowContext).data as Float32Array) : null;
    const bias = p.bias ? (view(rt, p.bias).data as Float32Array)[0] : 0;
    for (let r = 0; r < rows; r++) {
      const y = labels[r] - p.classOffset;
      if (y < 0 || y >= cols) {
        target[r] = -1;
        continue;
      }
      const zy = z[r * cols + y];
      const row = { target: zy, context: ctx ? ctx[r] : 0 };
      target[r] = y;
      logit[r] = t.target(zy, t.uniforms, row) + bias;
      slope[r] = t.targetGrad(zy, t.uniforms, row);
      if (targetContextGrad) ctxSlope[r] = targetContextGrad(zy, t.uniforms, row);
    }
    const [lo, hi] = float32Bounds(f.lo, f.hi);
    const args = [
      p.logits.ptr, p.grad.ptr, cols, block.ptr + rows * 24, block.ptr, block.ptr + rows * 8,
      f.scale, lo, hi, f.slope, f.slopeOutside, bias, p.scale,
      p.rowLoss.ptr, p.rowLogitGrad.ptr, p.rowLogSumExp ? p.rowLogSumExp.ptr : 0, p.globalLogSumExp ? p.globalLogSumExp.ptr : 0,
      block.ptr + rows * 16, p.rowContextGrad ? p.rowContextGrad.ptr : 0,
    ];
    const threads = rows * cols >= THREAD_ELEMENTS ? rt.threads : 1;
    runParts(rt, 'marginSoftmaxRows', splitRange(rows, threads, 1).map(([r0, r1]) => [...args, r0, r1]));
  } finally {
    rt.heap.release(block.ptr, block.size);
  }
}
