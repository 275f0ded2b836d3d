/**
 * @fr/backend-cpu: every kernel of the table in TypeScript. It is the living definition of each op
 * (the GPU kernels are tested against it) and the default where no GPU adapter is found.
 */
import {
  BackendError,
  bytesPerElement,
  defineBackend,
  convertFromFloat16,
  convertToFloat16,
  float32ToFloat16Bits,
  type Backend,
  type BackendStats,
  type BinaryOp,
  type KernelTable,
  type UnaryOp,
} from '@fr/core';
import { checkAllocation, cpuCapabilities, f16, f32, hostTransfer, i32, typedArray, wrapKernels, type CpuBuffer } from './buffer.js';
import { groupMax, groupMaxBackward } from './group-max.js';
import { layerKernels } from './layers.js';
import { marginLoss } from './margin-loss.js';
import { matmul } from './matmul.js';

export type { CpuBuffer } from './buffer.js';
/** For backends that run these kernels on views of their own memory (@fr/backend-wasm). */
export { checkAllocation, checkWrite, cpuCapabilities, hostTransfer, loadHost, storeHost } from './buffer.js';
export { softplus, sigmoid } from './margin-loss.js';

const unaryFns: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  relu: (x) => (x > 0 ? x : 0),
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  abs: Math.abs,
  square: (x) => x * x,
  tanh: Math.tanh,
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
};

const binaryFns: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => (a > b ? a : b),
  min: (a, b) => (a < b ? a : b),
  reluBackward: (g, x) => (x > 0 ? g : 0),
};

export const cpuKernels: KernelTable<CpuBuffer> = {
  fill(out, n, value) {
    out.data.fill(out.dtype === 'float16' ? float32ToFloat16Bits(value) : value, 0, n);
  },
  copy(src, dst, n, srcOffset, dstOffset) {
    if (src.dtype !== dst.dtype) throw new BackendError(`cpu backend: copy from ${src.dtype} to ${dst.dtype} (${src.label || 'a buffer'} to ${dst.label || 'a buffer'}); copy keeps the element type`);
    dst.data.set(src.data.subarray(srcOffset, srcOffset + n), dstOffset);
  },
  matmul,
  toFloat16(src, dst, n) {
    convertToFloat16(f32(src), f16(dst), n);
  },
  fromFloat16(src, dst, n) {
    convertFromFloat16(f16(src), f32(dst), n);
  },
  unary(op, a, out, n) {
    const f = unaryFns[op];
    const x = f32(a), y = f32(out);
    for (let i = 0; i < n; i++) y[i] = f(x[i]);
  },
  binary(op, a, b, out, n) {
    const f = binaryFns[op];
    const x = f32(a), y = f32(b), o = f32(out);
    for (let i = 0; i < n; i++) o[i] = f(x[i], y[i]);
  },
  scaleBy(a, scalar, out, n) {
    const s = f32(scalar)[0];
    const x = f32(a), o = f32(out);
    for (let i = 0; i < n; i++) o[i] = x[i] * s;
  },
  axpby(a, b, out, n, alpha, beta) {
    const x = f32(a), y = f32(b), o = f32(out);
    for (let i = 0; i < n; i++) o[i] = alpha * x[i] + beta * y[i];
  },
  affine(a, out, n, alpha, beta) {
    const x = f32(a), o = f32(out);
    for (let i = 0; i < n; i++) o[i] = alpha * x[i] + beta;
  },
  addRowVector(x, v, out, rows, cols) {
    const a = f32(x), b = f32(v), o = f32(out);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) o[r * cols + c] = a[r * cols + c] + b[c];
  },
  reduceSum(x, out, rows, cols, axis) {
    const a = f32(x), o = f32(out);
    if (axis === 0) {
      const acc = new Float64Array(cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) acc[c] += a[r * cols + c];
      o.set(acc);
    } else {
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += a[r * cols + c];
        o[r] = s;
      }
    }
  },
  sumSquares(x, out, n) {
    const a = f32(x);
    let s = 0;
    for (let i = 0; i < n; i++) s += a[i] * a[i];
    f32(out)[0] = s;
  },
  l2normalizeRows(x, y, norms, rows, cols, eps) {
    const a = f32(x), o = f32(y), nm = f32(norms);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += a[r * cols + c] ** 2;
      const norm = Math.sqrt(s);
      nm[r] = norm;
      const d = Math.max(norm, eps);
      for (let c = 0; c < cols; c++) o[r * cols + c] = a[r * cols + c] / d;
    }
  },
  l2normalizeRowsBackward(gradY, y, norms, gradX, rows, cols, eps) {
    const g = f32(gradY), o = f32(y), nm = f32(norms), gx = f32(gradX);
    for (let r = 0; r < rows; r++) {
      const norm = nm[r];
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += g[r * cols + c] * o[r * cols + c];
      // Below eps the forward divided by a constant, so the projection term vanishes.
      const proj = norm > eps ? dot : 0;
      const d = Math.max(norm, eps);
      for (let c = 0; c < cols; c++) gx[r * cols + c] = (g[r * cols + c] - proj * o[r * cols + c]) / d;
    }
  },
  sliceCols(x, out, rows, cols, start, width) {
    const a = f32(x), o = f32(out);
    for (let r = 0; r < rows; r++) o.set(a.subarray(r * cols + start, r * cols + start + width), r * width);
  },
  scatterCols(x, out, rows, cols, start, width, accumulate) {
    const a = f32(x), o = f32(out);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < width; c++) {
        const idx = r * cols + start + c;
        o[idx] = accumulate ? o[idx] + a[r * width + c] : a[r * width + c];
      }
    }
  },
  gatherRows(x, index, out, count, cols) {
    const a = f32(x), idx = i32(index), o = f32(out);
    for (let i = 0; i < count; i++) o.set(a.subarray(idx[i] * cols, idx[i] * cols + cols), i * cols);
  },
  scatterAddRows(x, index, out, count, cols) {
    const a = f32(x), idx = i32(index), o = f32(out);
    for (let i = 0; i < count; i++) {
      const base = idx[i] * cols;
      for (let c = 0; c < cols; c++) o[base + c] += a[i * cols + c];
    }
  },
  prelu(x, slope, out, p) {
    const a = f32(x), s = f32(slope), o = f32(out);
    for (let n = 0; n < p.outer; n++) {
      for (let c = 0; c < p.channels; c++) {
        const base = (n * p.channels + c) * p.inner;
        for (let i = 0; i < p.inner; i++) {
          const v = a[base + i];
          o[base + i] = v > 0 ? v : s[c] * v;
        }
      }
    }
  },
  preluBackward(gradOut, x, slope, gradX, gradSlope, p) {
    const g = f32(gradOut), a = f32(x), s = f32(slope), gx = f32(gradX), gs = f32(gradSlope);
    for (let c = 0; c < p.channels; c++) {
      let acc = 0;
      for (let n = 0; n < p.outer; n++) {
        const base = (n * p.channels + c) * p.inner;
        for (let i = 0; i < p.inner; i++) {
          const v = a[base + i];
          gx[base + i] = v > 0 ? g[base + i] : s[c] * g[base + i];
          if (v <= 0) acc += v * g[base + i];
        }
      }
      gs[c] = acc;
    }
  },
  marginLoss,
  groupMax,
  groupMaxBackward,
  sgdStep(param, grad, momentumBuffer, p) {
    const w = f32(param), g = f32(grad), buf = f32(momentumBuffer);
    for (let i = 0; i < p.n; i++) {
      let d = g[i] + p.weightDecay * w[i];
      if (p.momentum !== 0) {
        buf[i] = p.momentum * buf[i] + (1 - p.dampening) * d;
        d = p.nesterov ? d + p.momentum * buf[i] : buf[i];
      }
      w[i] -= p.lr * d;
    }
  },
  adamwStep(param, grad, m, v, p) {
    const w = f32(param), g = f32(grad), mm = f32(m), vv = f32(v);
    const c1 = 1 - p.beta1 ** p.step;
    const c2 = 1 - p.beta2 ** p.step;
    for (let i = 0; i < p.n; i++) {
      w[i] *= 1 - p.lr * p.weightDecay;
      mm[i] = p.beta1 * mm[i] + (1 - p.beta1) * g[i];
      vv[i] = p.beta2 * vv[i] + (1 - p.beta2) * g[i] * g[i];
      w[i] -= (p.lr * (mm[i] / c1)) / (Math.sqrt(vv[i] / c2) + p.eps);
    }
  },
  ...layerKernels,
};

export interface CpuBackendOptions {
  /** Largest single buffer, in bytes (default 2 GiB); larger allocations are refused. */
  maxBufferSize?: number;
}

/** Creates the CPU backend. */
export function createCpuBackend(options: CpuBackendOptions = {}): Backend<CpuBuffer> {
  const maxBufferSize = options.maxBufferSize ?? 2 ** 31;
  const stats: BackendStats = { dispatches: 0, bytesWritten: 0, bytesRead: 0, buffersLive: 0, bytesLive: 0 };
  const live = new Set<CpuBuffer>();
  let disposed = false;
  // Count dispatches without touching every kernel: wrap the table once.
  const kernels = wrapKernels(cpuKernels, (name, fn) => (...args) => {
    if (disposed) throw new BackendError(`cpu backend: kernel ${name} called after dispose`);
    stats.dispatches++;
    return fn(...args);
  });
  return defineBackend<CpuBuffer>({
    name: 'cpu',
    capabilities: cpuCapabilities(maxBufferSize, 'CPU (TypeScript kernels)'),
    alloc(size, dtype, o = {}) {
      if (disposed) throw new BackendError('cpu backend: alloc after dispose');
      checkAllocation('cpu backend', size * bytesPerElement(dtype), maxBufferSize, o.label);
      const data = typedArray(dtype, size);
      const b: CpuBuffer = { dtype, data, label: o.label ?? '' };
      live.add(b);
      stats.buffersLive++;
      stats.bytesLive += data.byteLength;
      return b;
    },
    free(b) {
      if (live.delete(b)) {
        stats.buffersLive--;
        stats.bytesLive -= b.data.byteLength;
      }
    },
    ...hostTransfer<CpuBuffer>('cpu backend', stats, (b) => b),
    kernels,
    async sync() {},
    stats: () => ({ ...stats }),
    dispose() {
      disposed = true;
      live.clear();
    },
  });
}
