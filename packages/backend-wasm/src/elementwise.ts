/**
 * Elementwise kernels, the SGD step and row normalisation on the kernel module
 * (assembly/elementwise.ts), split over index ranges or rows among the threads.
 */
import type { BinaryOp, KernelTable } from '@fr/core';
import { requireFloat32, runParts, splitRange, type Runtime, type WasmBuffer } from './runtime.js';

/** Op codes of assembly/elementwise.ts, in its order. */
const BINARY_OPS: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min', 'reluBackward'];
/** Below this many elements the work stays on one thread. */
const THREAD_ELEMENTS = 1 << 16;

function ranges(rt: Runtime, n: number, work: number, quantum: number): [number, number][] {
  return splitRange(n, work >= THREAD_ELEMENTS ? rt.threads : 1, quantum);
}

type ElementwiseKernels = Pick<KernelTable<WasmBuffer>, 'binary' | 'axpby' | 'sgdStep' | 'l2normalizeRows' | 'l2normalizeRowsBackward'>;

export function elementwiseKernels(rt: Runtime): ElementwiseKernels {
  const check = (name: string, buffers: WasmBuffer[]) => buffers.forEach((b) => requireFloat32(b, name));
  return {
    binary(op, a, b, out, n) {
      check('binary', [a, b, out]);
      runParts(rt, 'binary', ranges(rt, n, n, 4).map(([i0, i1]) => [BINARY_OPS.indexOf(op), a.ptr, b.ptr, out.ptr, i0, i1]));
    },
    axpby(a, b, out, n, alpha, beta) {
      check('axpby', [a, b, out]);
      runParts(rt, 'axpby', ranges(rt, n, n, 4).map(([i0, i1]) => [a.ptr, b.ptr, out.ptr, alpha, beta, i0, i1]));
    },
    sgdStep(param, grad, momentumBuffer, p) {
      check('sgdStep', [param, grad, momentumBuffer]);
      const args = [param.ptr, grad.ptr, momentumBuffer.ptr, p.lr, p.momentum, p.dampening, p.weightDecay, p.nesterov ? 1 : 0];
      runParts(rt, 'sgdStep', ranges(rt, p.n, p.n, 4).map(([i0, i1]) => [...args, i0, i1]));
    },
    l2normalizeRows(x, y, norms, rows, cols, eps) {
      check('l2normalizeRows', [x, y, norms]);
      runParts(rt, 'l2normalizeRows', ranges(rt, rows, rows * cols, 1).map(([r0, r1]) => [x.ptr, y.ptr, norms.ptr, cols, eps, r0, r1]));
    },
    l2normalizeRowsBackward(gradY, y, norms, gradX, rows, cols, eps) {
      check('l2normalizeRowsBackward', [gradY, y, norms, gradX]);
      runParts(rt, 'l2normalizeRowsBackward', ranges(rt, rows, rows * cols, 1).map(([r0, r1]) => [gradY.ptr, y.ptr, norms.ptr, gradX.ptr, cols, eps, r0, r1]));
    },
  };
}
