/**
 * The backend conformance kit: every kernel of the table run on a subject backend and on a
 * reference backend (the CPU backend) with the same random inputs, edge shapes included (one row,
 * odd sizes, sizes that do not divide a workgroup). A backend passes when every output agrees.
 */
import { compareTolerance } from './tolerance.js';
import type { Backend, DType, HostArray } from '../backend.js';
import type { KernelTable, MatmulParams, Conv2dParams, ChannelLayout } from '../kernels.js';
import { identityTransform, scaledTransform, defineTransform, clampedAcos, type MarginTransform } from '../margin.js';
import { createRng, type Rng } from '../rng.js';

export interface KernelCase {
  /** The kernel under test. */
  kernel: keyof KernelTable<unknown>;
  /** Readable name of the case: kernel and shape. */
  name: string;
  /** Runs the case on a backend and returns its outputs by name. */
  run(backend: Backend): Promise<Record<string, HostArray>>;
  /** Allowed error: max|got - want| <= atol + rtol * max|want|. */
  rtol: number;
  atol: number;
}

export interface KernelCaseResult {
  name: string;
  kernel: string;
  passed: boolean;
  /** Worst output: name and max abs error against the allowed error. */
  worst: { output: string; maxError: number; allowed: number };
  error?: string;
}

/** Runs a case on both backends and compares every output. */
export async function runKernelCase(c: KernelCase, subject: Backend, reference: Backend): Promise<KernelCaseResult> {
  try {
    const [got, want] = await Promise.all([c.run(subject), c.run(reference)]);
    let worst = { output: '', maxError: 0, allowed: 0 };
    let passed = true;
    for (const [output, w] of Object.entries(want)) {
      const g = got[output];
      const { maxError, limit: allowed, pass: ok } = compareTolerance(g, w, c);
      if (!ok) passed = false;
      if (!ok || maxError / (allowed || 1) > worst.maxError / (worst.allowed || 1)) worst = { output, maxError, allowed };
    }
    return { name: c.name, kernel: c.kernel, passed, worst };
  } catch (e) {
    return { name: c.name, kernel: c.kernel, passed: false, worst: { output: '', maxError: NaN, allowed: 0 }, error: (e as Error).message };
  }
}

/** Uploads host data and returns the buffer handle. */
function upload(backend: Backend, data: HostArray, as?: DType): unknown {
  const dtype: DType = as ?? (data instanceof Int32Array ? 'int32' : 'float32');
  const b = backend.alloc(data.length, dtype);
  backend.write(b, data);
  return b;
}

function randn(rng: Rng, n: number, scaleBy = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scaleBy;
  return out;
}

function randPositive(rng: Rng, n: number, low = 0.5, high = 2): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = low + (high - low) * rng.uniform();
  return out;
}

/**
 * Builds a case: `inputs` are uploaded, `outputs` (sizes) are allocated (and filled with `initial`
 * where given, so accumulating kernels see the same starting contents), `call` enqueues the kernel.
 */
function kernelCase(
  kernel: keyof KernelTable<unknown>,
  name: string,
  inputs: Record<string, HostArray>,
  outputs: Record<string, number | HostArray>,
  call: (k: KernelTable<unknown>, b: Record<string, unknown>) => void,
  tol: { rtol?: number; atol?: number } = {},
  /** Inputs and outputs held as float16 (their host values are float32). */
  half: readonly string[] = [],
): KernelCase {
  return {
    kernel,
    name: `${kernel} ${name}`,
    rtol: tol.rtol ?? 1e-5,
    atol: tol.atol ?? 1e-5,
    async run(backend) {
      const buffers: Record<string, unknown> = {};
      const dtypeOf = (name: string) => (half.includes(name) ? 'float16' : undefined);
      for (const [n, d] of Object.entries(inputs)) buffers[n] = upload(backend, d, dtypeOf(n));
      for (const [n, o] of Object.entries(outputs)) {
        if (typeof o === 'number') {
          buffers[n] = backend.alloc(o, dtypeOf(n) ?? 'float32');
          backend.kernels.fill(buffers[n], o, 0);
        } else buffers[n] = upload(backend, o, dtypeOf(n));
      }
      call(backend.kernels as KernelTable<unknown>, buffers);
      const result: Record<string, HostArray> = {};
      for (const [n, o] of Object.entries(outputs)) {
        const size = typeof o === 'number' ? o : o.length;
        result[n] = await backend.read(buffers[n], o instanceof Int32Array ? 'int32' : 'float32', size);
      }
      for (const b of Object.values(buffers)) backend.free(b);
      return result;
    },
  };
}

/** A transform that exercises trigonometry, the row context and the target score. */
export const conformanceTransform: MarginTransform = defineTransform({
  key: 'conformance-angular',
  uniforms: { s: 16, m: 0.3 },
  target: (z, u, row) => u.s * Math.cos(clampedAcos(z) + u.m) + 0.1 * row.context,
  // The slope's floor keeps it well conditioned: near |z| = 1 float32 acos differs from float64.
  targetGrad: (z, u) => (u.s * Math.sin(clampedAcos(z) + u.m)) / Math.sqrt(Math.max(1 - z * z, 1e-2)),
  other: (z, u, row) => (z > row.target ? u.s * z * (1 + z) : u.s * z),
  otherGrad: (z, u, row) => (z > row.target ? u.s * (1 + 2 * z) : u.s),
  wgsl: /* wgsl */ `
fn fr_theta(z: f32) -> f32 { return acos(clamp(z, -1.0 + 1e-5, 1.0 - 1e-5)); }
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * cos(fr_theta(z) + u.m) + 0.1 * row.context; }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s * sin(fr_theta(z) + u.m) / sqrt(max(1.0 - z * z, 1e-2)); }
fn fr_other(z: f32, row: FrRow) -> f32 { if (z > row.target_z) { return u.s * z * (1.0 + z); } return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { if (z > row.target_z) { return u.s * (1.0 + 2.0 * z); } return u.s; }
`,
});

/**
 * A transform whose logits depend on the row context with a gradient (as MagFace's margin depends
 * on the feature norm): target s cos(theta + m c), non-target s z + q c z^2. Exact in z and c
 * while |z| < 0.99.
 */
export const contextGradientTransform: MarginTransform = defineTransform({
  key: 'conformance-context-gradient',
  uniforms: { s: 16, m: 0.3, q: 0.5 },
  contextGradient: true,
  target: (z, u, row) => u.s * Math.cos(clampedAcos(z) + u.m * row.context),
  targetGrad: (z, u, row) => (u.s * Math.sin(clampedAcos(z) + u.m * row.context)) / Math.sqrt(Math.max(1 - z * z, 1e-2)),
  targetContextGrad: (z, u, row) => -u.s * u.m * Math.sin(clampedAcos(z) + u.m * row.context),
  other: (z, u, row) => u.s * z + u.q * row.context * z * z,
  otherGrad: (z, u, row) => u.s + 2 * u.q * row.context * z,
  otherContextGrad: (z, u) => u.q * z * z,
  wgsl: /* wgsl */ `
fn fr_theta(z: f32) -> f32 { return acos(clamp(z, -1.0 + 1e-5, 1.0 - 1e-5)); }
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * cos(fr_theta(z) + u.m * row.context); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s * sin(fr_theta(z) + u.m * row.context) / sqrt(max(1.0 - z * z, 1e-2)); }
fn fr_target_context_grad(z: f32, row: FrRow) -> f32 { return -u.s * u.m * sin(fr_theta(z) + u.m * row.context); }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z + u.q * row.context * z * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s + 2.0 * u.q * row.context * z; }
fn fr_other_context_grad(z: f32, row: FrRow) -> f32 { return u.q * z * z; }
`,
});

export interface ConformanceOptions {
  seed?: number;
  /** Include the larger shapes (slow on software adapters). */
  large?: boolean;
  /** Only these kernels. */
  kernels?: readonly (keyof KernelTable<unknown>)[];
}

/** Every case of the kit. */
export function kernelConformanceCases(options: ConformanceOptions = {}): KernelCase[] {
  const baseRng = createRng(options.seed ?? 1234);
  // Cases added later draw from their own stream, so the data of the earlier ones never shifts.
  const laterRng = createRng((options.seed ?? 1234) + 1);
  let rng: Rng = baseRng;
  const cases: KernelCase[] = [];
  const add = (c: KernelCase) => {
    if (!options.kernels || options.kernels.includes(c.kernel)) cases.push(c);
  };
  const sizes = [1, 7, 64, 257, 1000];

  for (const n of sizes) {
    add(kernelCase('fill', `n=${n}`, {}, { out: n }, (k, b) => k.fill(b.out, n, 0.25 * n)));
    const a = randn(rng, n), c = randn(rng, n), pos = randPositive(rng, n);
    add(kernelCase('copy', `n=${n}`, { a }, { out: n + 3 }, (k, b) => k.copy(b.a, b.out, Math.max(1, n - 1), n > 1 ? 1 : 0, 2)));
    for (const op of ['neg', 'relu', 'exp', 'abs', 'square', 'tanh', 'sigmoid'] as const) {
      add(kernelCase('unary', `${op} n=${n}`, { a }, { out: n }, (k, b) => k.unary(op, b.a, b.out, n), { rtol: 1e-5, atol: 1e-6 }));
    }
    for (const op of ['log', 'sqrt'] as const) {
      add(kernelCase('unary', `${op} n=${n}`, { pos }, { out: n }, (k, b) => k.unary(op, b.pos, b.out, n), { rtol: 1e-5, atol: 1e-6 }));
    }
    for (const op of ['add', 'sub', 'mul', 'max', 'min', 'reluBackward'] as const) {
      add(kernelCase('binary', `${op} n=${n}`, { a, c }, { out: n }, (k, b) => k.binary(op, b.a, b.c, b.out, n)));
    }
    add(kernelCase('binary', `div n=${n}`, { a, pos }, { out: n }, (k, b) => k.binary('div', b.a, b.pos, b.out, n)));
    add(kernelCase('scaleBy', `n=${n}`, { a, s: Float32Array.of(-1.5) }, { out: n }, (k, b) => k.scaleBy(b.a, b.s, b.out, n)));
    add(kernelCase('axpby', `n=${n}`, { a, c }, { out: n }, (k, b) => k.axpby(b.a, b.c, b.out, n, 0.5, -2)));
    add(kernelCase('affine', `n=${n}`, { a }, { out: n }, (k, b) => k.affine(b.a, b.out, n, 3, -0.5)));
    add(kernelCase('sumSquares', `n=${n}`, { a }, { out: 1 }, (k, b) => k.sumSquares(b.a, b.out, n), { rtol: 1e-5, atol: 1e-5 }));
    const mom = randn(rng, n), m2 = randn(rng, n, 0.1), v2 = randPositive(rng, n, 0, 0.1);
    for (const nesterov of [false, true]) {
      add(kernelCase('sgdStep', `n=${n} nesterov=${nesterov}`, { g: c }, { w: a.slice(), buf: mom.slice() }, (k, b) =>
        k.sgdStep(b.w, b.g, b.buf, { n, lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov })));
    }
    add(kernelCase('adamwStep', `n=${n}`, { g: c }, { w: a.slice(), m: m2.slice(), v: v2.slice() }, (k, b) =>
      k.adamwStep(b.w, b.g, b.m, b.v, { n, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 3 })));
    add(kernelCase('dropout', `n=${n}`, { a }, { out: n, mask: n }, (k, b) => k.dropout(b.a, b.out, b.mask, n, 0.3, 42)));
  }

  // A NaN in a gradient must reach the global norm: trainers rely on it to catch a bad step.
  const withNaN = randn(laterRng, 1000);
  withNaN[777] = NaN;
  add(kernelCase('sumSquares', 'n=1000 with a NaN', { a: withNaN }, { out: 1 }, (k, b) => k.sumSquares(b.a, b.out, 1000)));

  // float16 storage: values over the whole range (subnormals, overflow, an odd count), read back as
  // float32. Devices may round a float32 to either neighbouring float16, so 1 ulp (2^-10) is allowed.
  for (const n of [1, 7, 1000]) {
    const wide = randn(laterRng, n, 4);
    if (n > 4) wide.set([1e-6, -7e-8, 70000, -1e9], 0);
    add(kernelCase('toFloat16', `n=${n}`, { x: wide }, { h: n }, (k, b) => k.toFloat16(b.x, b.h, n), { rtol: 2 ** -10, atol: 6e-8 }, ['h']));
    add(kernelCase('fromFloat16', `n=${n}`, { h: wide }, { x: n }, (k, b) => k.fromFloat16(b.h, b.x, n), { rtol: 0, atol: 0 }, ['h']));
  }
  for (const [transB, m, nn, kk] of [[true, 5, 7, 9], [false, 33, 70, 20], [true, 128, 300, 64]] as const) {
    const a = randn(laterRng, m * kk), bb = randn(laterRng, kk * nn);
    const p = { m, n: nn, k: kk, transA: false, transB, alpha: 1, beta: 0, halfB: true };
    add(kernelCase('matmul', `${m}x${nn}x${kk} tB=${transB} float16 B`, { a, bb }, { out: m * nn }, (k, b) => k.matmul(b.a, b.bb, b.out, p), { rtol: 1e-5, atol: 1e-4 }, ['bb']));
  }

  // Float16 A and a float16 output (the float32 sum rounded once); an odd n puts a float16 pair
  // across two rows, written by different invocations. Its own generator leaves the other cases' inputs as they were.
  const halfRng = createRng(0x5eed16);
  const halfProducts = [[false, false, true, 5, 7, 9, false], [true, false, true, 33, 71, 20, true], [true, true, true, 70, 129, 64, false], [true, false, false, 17, 30, 40, false]] as const;
  for (const [transA, transB, halfC, m, nn, kk, halfB] of halfProducts) {
    const a = randn(halfRng, m * kk), bb = randn(halfRng, kk * nn);
    const p = { m, n: nn, k: kk, transA, transB, alpha: 0.5, beta: 0, halfA: true, halfB, halfC };
    const half = ['a', ...(halfB ? ['bb'] : []), ...(halfC ? ['out'] : [])];
    add(kernelCase('matmul', `${m}x${nn}x${kk} tA=${transA} tB=${transB} float16 ${half.join(', ')}`, { a, bb }, { out: m * nn },
      (k, b) => k.matmul(b.a, b.bb, b.out, p), { rtol: halfC ? 2 ** -10 : 1e-5, atol: 1e-4 }, half));
  }

  const shapes: [number, number][] = [[1, 1], [1, 300], [3, 5], [17, 33], [64, 64], [5, 1030]];
  if (options.large) shapes.push([128, 2049]);
  for (const [rows, cols] of shapes) {
    const x = randn(rng, rows * cols), v = randn(rng, cols), g = randn(rng, rows * cols);
    const tag = `${rows}x${cols}`;
    add(kernelCase('addRowVector', tag, { x, v }, { out: rows * cols }, (k, b) => k.addRowVector(b.x, b.v, b.out, rows, cols)));
    add(kernelCase('reduceSum', `${tag} axis 0`, { x }, { out: cols }, (k, b) => k.reduceSum(b.x, b.out, rows, cols, 0), { atol: 1e-4 }));
    add(kernelCase('reduceSum', `${tag} axis 1`, { x }, { out: rows }, (k, b) => k.reduceSum(b.x, b.out, rows, cols, 1), { atol: 1e-4 }));
    add(kernelCase('l2normalizeRows', tag, { x }, { y: rows * cols, norms: rows }, (k, b) => k.l2normalizeRows(b.x, b.y, b.norms, rows, cols, 1e-12)));
    {
      // Backward needs the forward's outputs as inputs: compute them on the host.
      const y = new Float32Array(rows * cols), norms = new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += x[r * cols + c] ** 2;
        norms[r] = Math.sqrt(s);
        for (let c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] / norms[r];
      }
      add(kernelCase('l2normalizeRowsBackward', tag, { g, y, norms }, { gx: rows * cols }, (k, b) =>
        k.l2normalizeRowsBackward(b.g, b.y, b.norms, b.gx, rows, cols, 1e-12)));
    }
    if (cols >= 3) {
      const start = 1, width = cols - 2;
      add(kernelCase('sliceCols', tag, { x }, { out: rows * width }, (k, b) => k.sliceCols(b.x, b.out, rows, cols, start, width)));
      const part = randn(rng, rows * width);
      for (const accumulate of [false, true]) {
        add(kernelCase('scatterCols', `${tag} accumulate=${accumulate}`, { part }, { out: x.slice() }, (k, b) =>
          k.scatterCols(b.part, b.out, rows, cols, start, width, accumulate)));
      }
    }
    const count = Math.max(1, Math.floor(rows / 2));
    const idx = Int32Array.from(rng.shuffle([...Array(rows).keys()]).slice(0, count));
    add(kernelCase('gatherRows', tag, { x, idx }, { out: count * cols }, (k, b) => k.gatherRows(b.x, b.idx, b.out, count, cols)));
    const src = randn(rng, count * cols);
    add(kernelCase('scatterAddRows', tag, { src, idx }, { out: x.slice() }, (k, b) => k.scatterAddRows(b.src, b.idx, b.out, count, cols)));
  }

  const mm: [number, number, number][] = [[1, 1, 1], [1, 7, 5], [7, 1, 65], [65, 130, 7], [33, 65, 130], [64, 64, 64]];
  if (options.large) mm.push([128, 1000, 512]);
  for (const [m, n, kk] of mm) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = randn(rng, m * kk), bb = randn(rng, kk * n), c0 = randn(rng, m * n);
        const p: MatmulParams = { m, n, k: kk, transA, transB, alpha: 1, beta: 0 };
        add(kernelCase('matmul', `${m}x${n}x${kk} tA=${transA} tB=${transB}`, { a, bb }, { out: m * n }, (k, b) => k.matmul(b.a, b.bb, b.out, p), { rtol: 1e-5, atol: 1e-4 }));
        if (m === 33) {
          add(kernelCase('matmul', `${m}x${n}x${kk} tA=${transA} tB=${transB} alpha=0.5 beta=-1`, { a, bb }, { out: c0.slice() }, (k, b) =>
            k.matmul(b.a, b.bb, b.out, { ...p, alpha: 0.5, beta: -1 }), { rtol: 1e-5, atol: 1e-4 }));
        }
      }
    }
  }

  // The last two have many channels over short rows, and few channels whose elements a GPU
  // backend may split into parallel slices that cross row boundaries.
  const layouts: ChannelLayout[] = [
    { outer: 1, channels: 1, inner: 1 }, { outer: 3, channels: 5, inner: 7 }, { outer: 2, channels: 64, inner: 9 },
    { outer: 37, channels: 130, inner: 3 }, { outer: 5, channels: 3, inner: 300 },
  ];
  for (const [index, l] of layouts.entries()) {
    rng = index < 3 ? baseRng : laterRng;
    const n = l.outer * l.channels * l.inner;
    const x = randn(rng, n), slope = randn(rng, l.channels, 0.25), g = randn(rng, n);
    const tag = `${l.outer}x${l.channels}x${l.inner}`;
    add(kernelCase('prelu', tag, { x, slope }, { out: n }, (k, b) => k.prelu(b.x, b.slope, b.out, l)));
    add(kernelCase('preluBackward', tag, { g, x, slope }, { gx: n, gs: l.channels }, (k, b) =>
      k.preluBackward(b.g, b.x, b.slope, b.gx, b.gs, l), { atol: 1e-4 }));
    add(kernelCase('globalAvgPool', tag, { x }, { out: l.outer * l.channels }, (k, b) => k.globalAvgPool(b.x, b.out, l)));
    const gp = randn(rng, l.outer * l.channels);
    add(kernelCase('globalAvgPoolBackward', tag, { gp }, { gx: n }, (k, b) => k.globalAvgPoolBackward(b.gp, b.gx, l)));
    const gamma = randPositive(rng, l.channels), beta = randn(rng, l.channels);
    const mean = randn(rng, l.channels, 0.1), variance = randPositive(rng, l.channels);
    if (l.outer * l.inner > 1) {
      const p = { ...l, eps: 1e-5, training: true };
      add(kernelCase('batchNorm', `${tag} training`, { x, gamma, beta }, { mean: l.channels, variance: l.channels, out: n }, (k, b) =>
        k.batchNorm(b.x, b.gamma, b.beta, b.mean, b.variance, b.out, p), { atol: 1e-4 }));
      // Backward reads the statistics the forward wrote: give it the host-computed batch statistics.
      const bm = new Float32Array(l.channels), bv = new Float32Array(l.channels);
      const count = l.outer * l.inner;
      for (let c = 0; c < l.channels; c++) {
        let s = 0, s2 = 0;
        for (let o = 0; o < l.outer; o++) for (let i = 0; i < l.inner; i++) s += x[(o * l.channels + c) * l.inner + i];
        const mu = s / count;
        for (let o = 0; o < l.outer; o++) for (let i = 0; i < l.inner; i++) s2 += (x[(o * l.channels + c) * l.inner + i] - mu) ** 2;
        bm[c] = mu;
        bv[c] = s2 / count;
      }
      add(kernelCase('batchNormBackward', `${tag} training`, { g, x, gamma, bm, bv }, { gx: n, gg: l.channels, gb: l.channels }, (k, b) =>
        k.batchNormBackward(b.g, b.x, b.gamma, b.bm, b.bv, b.gx, b.gg, b.gb, p), { atol: 1e-4, rtol: 1e-4 }));
    }
    const pe = { ...l, eps: 1e-5, training: false };
    add(kernelCase('batchNorm', `${tag} eval`, { x, gamma, beta, mean, variance }, { out: n }, (k, b) =>
      k.batchNorm(b.x, b.gamma, b.beta, b.mean, b.variance, b.out, pe), { atol: 1e-4 }));
    add(kernelCase('batchNormBackward', `${tag} eval`, { g, x, gamma, mean, variance }, { gx: n, gg: l.channels, gb: l.channels }, (k, b) =>
      k.batchNormBackward(b.g, b.x, b.gamma, b.mean, b.variance, b.gx, b.gg, b.gb, pe), { atol: 1e-4, rtol: 1e-4 }));
  }
  rng = baseRng;

  const convs: Partial<Conv2dParams>[] = [
    { batch: 1, inChannels: 1, inHeight: 5, inWidth: 5, outChannels: 1, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 1 },
    { batch: 2, inChannels: 3, inHeight: 9, inWidth: 8, outChannels: 5, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, groups: 1 },
    { batch: 2, inChannels: 4, inHeight: 7, inWidth: 7, outChannels: 8, kernelH: 1, kernelW: 1, strideH: 2, strideW: 2, padH: 0, padW: 0, groups: 1 },
    { batch: 2, inChannels: 6, inHeight: 8, inWidth: 8, outChannels: 6, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padH: 1, padW: 1, groups: 6 },
    { batch: 1, inChannels: 4, inHeight: 6, inWidth: 6, outChannels: 6, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 2 },
    { batch: 2, inChannels: 8, inHeight: 7, inWidth: 7, outChannels: 8, kernelH: 7, kernelW: 7, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 8 },
    // Padding wider than the kernel reach, unequal strides: the edge taps of every gradient.
    { batch: 1, inChannels: 2, inHeight: 5, inWidth: 6, outChannels: 3, kernelH: 3, kernelW: 2, strideH: 2, strideW: 3, padH: 2, padW: 1, groups: 1 },
    // Pointwise (1x1, stride 1, no padding): a product per image, tiles partly filled.
    { batch: 3, inChannels: 5, inHeight: 4, inWidth: 6, outChannels: 7, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1 },
    { batch: 2, inChannels: 70, inHeight: 9, inWidth: 9, outChannels: 66, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1 },
    // Many images over few weights: the weight gradient splits the batch into uneven slices.
    { batch: 40, inChannels: 8, inHeight: 6, inWidth: 6, outChannels: 8, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 1 },
  ];
  for (const [index, c] of convs.entries()) {
    rng = index < 6 ? baseRng : laterRng;
    const p = {
      ...c,
      outHeight: Math.floor((c.inHeight! + 2 * c.padH! - c.kernelH!) / c.strideH!) + 1,
      outWidth: Math.floor((c.inWidth! + 2 * c.padW! - c.kernelW!) / c.strideW!) + 1,
    } as Conv2dParams;
    const xs = p.batch * p.inChannels * p.inHeight * p.inWidth;
    const ws = p.outChannels * (p.inChannels / p.groups) * p.kernelH * p.kernelW;
    const os = p.batch * p.outChannels * p.outHeight * p.outWidth;
    const x = randn(rng, xs), w = randn(rng, ws), g = randn(rng, os);
    const tag = `n${p.batch} c${p.inChannels} ${p.inHeight}x${p.inWidth} o${p.outChannels} k${p.kernelH} s${p.strideH} p${p.padH} g${p.groups}`;
    add(kernelCase('conv2d', tag, { x, w }, { out: os }, (k, b) => k.conv2d(b.x, b.w, b.out, p), { atol: 1e-4 }));
    add(kernelCase('conv2dBackwardInput', tag, { g, w }, { gx: xs }, (k, b) => k.conv2dBackwardInput(b.g, b.w, b.gx, p), { atol: 1e-4 }));
    add(kernelCase('conv2dBackwardWeight', tag, { g, x }, { gw: ws }, (k, b) => k.conv2dBackwardWeight(b.g, b.x, b.gw, p), { atol: 1e-4 }));
  }
  rng = baseRng;

  const transforms: MarginTransform[] = [identityTransform, scaledTransform(30), conformanceTransform, contextGradientTransform];
  const margins: [number, number][] = [[1, 1], [1, 9], [4, 33], [3, 3000]];
  for (const [rows, cols] of margins) {
    const z = new Float32Array(rows * cols);
    for (let i = 0; i < z.length; i++) z[i] = 2 * rng.uniform() - 1;
    const labels = Int32Array.from({ length: rows }, () => rng.int(cols));
    const ctx = randn(rng, rows);
    for (const transform of transforms) {
      for (const reducer of ['softmax-ce', 'sigmoid-ova'] as const) {
        const withBias = reducer === 'sigmoid-ova';
        add(kernelCase('marginLoss', `${transform.key} ${reducer} ${rows}x${cols}`, { z, labels, ctx, bias: Float32Array.of(-3) }, { grad: rows * cols, rowLoss: rows, rowLogitGrad: rows }, (k, b) =>
          k.marginLoss({
            logits: b.z, labels: b.labels, grad: b.grad, rowLoss: b.rowLoss, rowLogitGrad: b.rowLogitGrad,
            rowContext: b.ctx, bias: withBias ? b.bias : null, rows, cols, classOffset: 0, transform, reducer,
            positiveWeight: 0.7, negativeWeight: 0.3, scale: 1 / rows,
            // GPU acos/cos are specified to a few ulp of pi only: the golden loss files allow 5e-4 too.
          }), { rtol: 5e-4, atol: 1e-5 }));
      }
    }
    for (const reducer of ['softmax-ce', 'sigmoid-ova'] as const) {
      add(kernelCase('marginLoss', `rowContextGrad ${reducer} ${rows}x${cols}`, { z, labels, ctx }, { grad: rows * cols, rowLoss: rows, rowLogitGrad: rows, ctxGrad: rows }, (k, b) =>
        k.marginLoss({
          logits: b.z, labels: b.labels, grad: b.grad, rowLoss: b.rowLoss, rowLogitGrad: b.rowLogitGrad,
          rowContext: b.ctx, rowContextGrad: b.ctxGrad, bias: null, rows, cols, classOffset: 0, transform: contextGradientTransform, reducer,
          positiveWeight: 0.7, negativeWeight: 0.3, scale: 1 / rows,
        }), { rtol: 5e-4, atol: 1e-5 }));
    }
    if (cols > 2) {
      // A shard holding classes [1, cols): rows whose label is 0 have no target here.
      add(kernelCase('marginLoss', `classOffset sigmoid-ova ${rows}x${cols}`, { z, labels }, { grad: rows * (cols - 1), rowLoss: rows, rowLogitGrad: rows }, (k, b) =>
        k.marginLoss({
          logits: b.z, labels: b.labels, grad: b.grad, rowLoss: b.rowLoss, rowLogitGrad: b.rowLogitGrad,
          rowContext: null, bias: null, rows, cols: cols - 1, classOffset: 1, transform: scaledTransform(10), reducer: 'sigmoid-ova',
          positiveWeight: 1, negativeWeight: 1, scale: 1,
        }), { rtol: 1e-4, atol: 1e-5 }));
    }
  }
  // Float16 logits and gradient (a sharded head's storage): odd row lengths put a pair across rows.
  const halfMarginRng = createRng(0xfa16);
  for (const [rows, cols] of [[4, 33], [3, 1031]] as const) {
    const z = Float32Array.from({ length: rows * cols }, () => 2 * halfMarginRng.uniform() - 1);
    const labels = Int32Array.from({ length: rows }, () => halfMarginRng.int(cols));
    for (const reducer of ['softmax-ce', 'sigmoid-ova'] as const) {
      add(kernelCase('marginLoss', `float16 logits and gradient ${reducer} ${rows}x${cols}`, { z, labels, bias: Float32Array.of(-3) }, { grad: rows * cols, rowLoss: rows, rowLogitGrad: rows }, (k, b) =>
        k.marginLoss({
          logits: b.z, labels: b.labels, grad: b.grad, rowLoss: b.rowLoss, rowLogitGrad: b.rowLogitGrad,
          rowContext: null, bias: reducer === 'sigmoid-ova' ? b.bias : null, rows, cols, classOffset: 0, transform: conformanceTransform, reducer,
          positiveWeight: 0.7, negativeWeight: 0.3, scale: 1 / rows, halfLogits: true, halfGrad: true,
        }), { rtol: 1e-3, atol: 1e-5 }, ['z', 'grad']));
    }
  }
  for (const [rows, groups, size] of [[1, 1, 1], [3, 5, 3], [17, 33, 2], [4, 300, 4]]) {
    const x = randn(rng, rows * groups * size);
    add(kernelCase('groupMax', `${rows}x${groups}x${size}`, { x }, { out: rows * groups, index: new Int32Array(rows * groups) }, (k, b) =>
      k.groupMax(b.x, b.out, b.index, rows, groups, size), { rtol: 0, atol: 0 }));
    // Values on a coarse grid, so groups hold tied maxima; the output starts at 7 (it is written, not added to).
    const tied = Float32Array.from(x, (v) => Math.round(v));
    const mx = Float32Array.from({ length: rows * groups }, (_, i) => Math.max(...tied.subarray(i * size, (i + 1) * size)));
    add(kernelCase('groupMaxBackward', `ties ${rows}x${groups}x${size}`, { x: tied, mx, g: randn(rng, rows * groups) }, { dx: new Float32Array(tied.length).fill(7) }, (k, b) =>
      k.groupMaxBackward(b.x, b.mx, b.g, b.dx, rows, groups, size), { rtol: 0, atol: 0 }));
  }
  return cases;
}

/** Runs every case; resolves to one result per case. */
export async function runKernelConformance(subject: Backend, reference: Backend, options: ConformanceOptions = {}): Promise<KernelCaseResult[]> {
  const results: KernelCaseResult[] = [];
  for (const c of kernelConformanceCases(options)) results.push(await runKernelCase(c, subject, reference));
  return results;
}
