/**
 * AdamW and reductions on the kernel module (assembly/optim.ts), split over elements, columns or
 * rows. They repeat the reference's float64 operations in its order, so their results are the
 * reference's bit for bit, at any thread count.
 */
import type { KernelTable } from '@fr/core';
import { requireFloat32, runParts, splitRange, type Runtime, type WasmBuffer } from './runtime.js';

/** Below this many elements the work stays on one thread. */
const THREAD_ELEMENTS = 1 << 16;

export function optimKernels(rt: Runtime): Pick<KernelTable<WasmBuffer>, 'adamwStep' | 'reduceSum'> {
  const threadsFor = (work: number) => (work >= THREAD_ELEMENTS ? rt.threads : 1);
  return {
    adamwStep(param, grad, m, v, p) {
      for (const b of [param, grad, m, v]) requireFloat32(b, 'adamwStep');
      const c1 = 1 - p.beta1 ** p.step, c2 = 1 - p.beta2 ** p.step;
      const args = [param.ptr, grad.ptr, m.ptr, v.ptr, p.lr, p.beta1, p.beta2, p.eps, p.weightDecay, c1, c2];
      runParts(rt, 'adamwStep', splitRange(p.n, threadsFor(p.n), 2).map(([i0, i1]) => [...args, i0, i1]));
    },
    reduceSum(x, out, rows, cols, axis) {
      requireFloat32(x, 'reduceSum');
      requireFloat32(out, 'reduceSum');
      if (axis === 0) {
        runParts(rt, 'reduceSumColumns', splitRange(cols, threadsFor(rows * cols), 2).map(([c0, c1]) => [x.ptr, out.ptr, rows, cols, c0, c1]));
      } else {
        runParts(rt, 'reduceSumRows', splitRange(rows, threadsFor(rows * cols), 1).map(([r0, r1]) => [x.ptr, out.ptr, cols, r0, r1]));
      }
    },
  };
}
