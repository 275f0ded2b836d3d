/**
 * Every kernel of the table as a dispatch description. Scalars and shapes go in uniforms, so a
 * pipeline is compiled once per (kernel, specialisation, workgroup size) and serves every shape.
 * Semantics follow @fr/backend-cpu exactly; arithmetic is float32.
 */
import { BackendError, float32ToFloat16Bits, WGSL_HASH_UNIFORM, type BinaryOp, type KernelTable, type UnaryOp } from '@fr/core';
import { groupMaxBody } from './group-max.js';
import { marginAuxLayout, marginLossKey, marginLossSource, marginLossUniforms, packTransformUniforms } from './margin-loss.js';
import { DIRECT_TILE_M, DIRECT_TILE_N, matmulDirectKey, matmulDirectSource, matmulKey, matmulParams, matmulSource, TILE, type MatmulStorage } from './matmul.js';
import type { GpuBuffer, Runtime } from './runtime.js';
import { uniformLayout, type ScalarType } from './uniforms.js';
import { flatMain, groupMain, HALF_BITS, MATH, parseBinding, reductions, storage, uniform } from './wgsl.js';

/** Threads of the first pass of sumSquares (each sums a strided slice). */
const SUM_PARTS = 4096;
/** From this many rows on, row normalisation runs one thread per row instead of a workgroup. */
const THREAD_PER_ROW_MIN = 1024;
/** Threads the weight gradient of a convolution aims for (weights x batch slices). */
const CONV_WEIGHT_THREADS = 16384;
/** Threads the per-channel reductions (batch norm, PReLU slopes) aim for. */
const CHANNEL_THREADS = 4096;

const unaryExpr: Record<UnaryOp, string> = {
  neg: '-x',
  relu: 'select(0.0, x, x > 0.0)',
  exp: 'exp(x)',
  log: 'log(x)',
  sqrt: 'sqrt(x)',
  abs: 'abs(x)',
  square: 'x * x',
  tanh: 'fr_tanh(x)',
  sigmoid: 'fr_sigmoid(x)',
};

const binaryExpr: Record<BinaryOp, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  // select() keeps the CPU's comparison semantics (the second operand wins ties and NaN).
  max: 'select(b, a, a > b)',
  min: 'select(b, a, a < b)',
  reluBackward: 'select(0.0, a, b > 0.0)',
};

type Fields = readonly (readonly [string, ScalarType])[];

interface KernelDef {
  fields: Fields;
  /** Storage bindings in order: "name", "name!" (written) or "name:i32". */
  buffers: readonly string[];
  /** WGSL after the bindings (helpers) and the entry body. */
  helpers?: string;
  main: (wg: number) => string;
}

export interface KernelOptions {
  /**
   * Matmul form: "tiled" stages tiles in workgroup memory (hardware GPUs); "direct" reads storage
   * with no barrier (software adapters, where a barrier switches every invocation of a workgroup).
   */
  matmul: 'tiled' | 'direct';
  /**
   * Row normalisation and marginLoss: "workgroup" (one workgroup per row with a tree reduction;
   * row normalisation goes one thread per row from THREAD_PER_ROW_MIN rows on: hardware) or
   * "thread" (always one thread per row: software adapters, where normalising 1,000 rows of 128
   * took 412 ms in workgroups).
   */
  rowReduction: 'workgroup' | 'thread';
}

export function createKernels(rt: Runtime, wg: number, options: KernelOptions): KernelTable<GpuBuffer> {
  const metas = new Map<string, { layout: ReturnType<typeof uniformLayout<string>>; writable: boolean[] }>();

  function source(def: KernelDef): string {
    const layout = uniformLayout(def.fields);
    const bindings = def.buffers.map((spec, i) => {
      const b = parseBinding(spec);
      return storage(i, b.name, b.type, b.write);
    });
    return [layout.struct('Params'), ...bindings, uniform(def.buffers.length, 'p', 'Params'), def.helpers ?? '', def.main(wg)].join('\n');
  }

  /** Dispatches kernel `name` (+ `spec`) over `groups` workgroups. */
  function run(
    name: string,
    spec: string,
    def: () => KernelDef,
    buffers: GpuBuffer[],
    values: Record<string, number | boolean>,
    groups: number,
    scratch: readonly GpuBuffer[] = [],
  ): void {
    if (groups === 0) return;
    const key = `${name}${spec ? `:${spec}` : ''}:wg${wg}`;
    let meta = metas.get(key);
    let built: KernelDef | null = null;
    if (!meta) {
      built = def();
      meta = { layout: uniformLayout(built.fields), writable: built.buffers.map((b) => parseBinding(b).write) };
      metas.set(key, meta);
    }
    rt.dispatch({
      key,
      source: () => source(built ?? def()),
      storage: buffers,
      writable: meta.writable,
      uniforms: [meta.layout.pack(values)],
      workgroups: rt.grid(groups),
      scratch,
    });
  }

  const flat = (n: number) => Math.ceil(n / wg);
  const threadPerRow = (rows: number) => options.rowReduction === 'thread' || rows >= THREAD_PER_ROW_MIN;
  // marginLoss keeps one workgroup per row; "thread" makes that workgroup one invocation, so its
  // tree reductions vanish (on SwiftShader: 25 ms instead of 155 ms for 128 rows of 1,000).
  const marginWg = options.rowReduction === 'thread' ? 1 : wg;
  const guard = (body: string, n = 'p.n') => `  if (gid >= ${n}) { return; }\n${body}`;

  const elementwise = (buffers: KernelDef['buffers'], fields: Fields, body: string, helpers = ''): KernelDef => ({
    fields: [['n', 'u32'], ...fields],
    buffers,
    helpers,
    main: (w) => flatMain(w, guard(body)),
  });

  /** One workgroup per row summing cols; out[row] = scale * sum. */
  const rowSum = (): KernelDef => ({
    fields: [['rows', 'u32'], ['cols', 'u32'], ['scale', 'f32']],
    buffers: ['x', 'y!'],
    helpers: reductions(wg),
    main: (w) => groupMain(w, `
  if (grp >= p.rows) { return; }
  var acc = 0.0;
  for (var c = lid; c < p.cols; c = c + ${w}u) { acc = acc + x[grp * p.cols + c]; }
  let total = fr_sum(acc, lid);
  if (lid == 0u) { y[grp] = p.scale * total; }`),
  });

  /**
   * Per-channel reductions over an [outer, channels, inner] tensor run one thread per (channel,
   * slice of outer rows), with no workgroup barrier: software adapters run barriers slowly, and
   * the slices keep a GPU busy when channels are few. A second pass merges the slices.
   */
  const channelSlices = (q: { outer: number; channels: number; inner: number }) => {
    const total = q.outer * q.inner;
    // Enough threads to fill the device, but at least ~256 elements per slice.
    const count = Math.max(1, Math.min(Math.ceil(total / 256), Math.ceil(CHANNEL_THREADS / q.channels)));
    return { count, chunk: Math.ceil(total / count) };
  };
  const channelFields: Fields = [['outer', 'u32'], ['channels', 'u32'], ['inner', 'u32'], ['slices', 'u32'], ['chunk', 'u32'], ['threads', 'u32']];
  const channelValues = (q: { outer: number; channels: number; inner: number }, sl: { count: number; chunk: number }) => ({
    outer: q.outer, channels: q.channels, inner: q.inner, slices: sl.count, chunk: sl.chunk, threads: sl.count * q.channels,
  });
  /** Thread gid = slice * channels + c; positions t0..t1 of the channel's outer x inner elements. */
  const channelSliceHeader = `  let c = gid % p.channels;
  let t0 = min(p.outer * p.inner, (gid / p.channels) * p.chunk);
  let t1 = min(p.outer * p.inner, t0 + p.chunk);`;
  /** Walks the slice with one division at its start; `idx` is the element's flat index. */
  const channelSliceLoop = (body: string) => `  {
    var i = t0 % p.inner;
    var idx = ((t0 / p.inner) * p.channels + c) * p.inner + i;
    for (var t = t0; t < t1; t = t + 1u) {
${body}
      i = i + 1u;
      idx = idx + 1u;
      if (i == p.inner) { i = 0u; idx = idx + (p.channels - 1u) * p.inner; }
    }
  }`;

  /** One thread per column summing rows: out[col] = sum over rows. */
  const colSum = (): KernelDef => ({
    fields: [['rows', 'u32'], ['cols', 'u32']],
    buffers: ['x', 'y!'],
    main: (w) => flatMain(w, guard(`  var acc = 0.0;
  for (var r = 0u; r < p.rows; r = r + 1u) { acc = acc + x[r * p.cols + gid]; }
  y[gid] = acc;`, 'p.cols')),
  });

  /**
   * Sums columns of a [rows, cols] scratch of partial results into `out`, releasing the scratch.
   * Used by the two-pass reductions, whose first pass needs no workgroup barrier.
   */
  const sumPartials = (partials: GpuBuffer, out: GpuBuffer, rows: number, cols: number) =>
    run('colSum', '', colSum, [partials, out], { rows, cols }, flat(cols), [partials]);

  /**
   * The matmul in the configured form (tiled or direct), optionally over a batch of products
   * (z workgroups) whose operands start sa, sb, sc elements apart.
   */
  function gemm(a: GpuBuffer, b: GpuBuffer, out: GpuBuffer, q: import('@fr/core').MatmulParams, batch = { count: 1, sa: 0, sb: 0, sc: 0 }): void {
    const { m, n, k } = q;
    if (m === 0 || n === 0 || batch.count === 0) return;
    const direct = options.matmul === 'direct';
    const h: MatmulStorage = { halfA: q.halfA ?? false, halfB: q.halfB ?? false, halfC: q.halfC ?? false };
    const operands = [[h.halfA, 'halfA', a, 'A'], [h.halfB, 'halfB', b, 'B'], [h.halfC, 'halfC', out, 'output']] as const;
    for (const [flag, name, buffer, role] of operands) {
      if (flag !== (buffer.dtype === 'float16')) {
        throw new BackendError(`webgpu backend: matmul with ${name} ${flag} got a ${buffer.dtype} ${role} (${buffer.label || 'unnamed'})`);
      }
    }
    if (h.halfC && q.beta !== 0) throw new BackendError(`webgpu backend: matmul into float16 ${out.label || 'output'} needs beta 0, got ${q.beta}`);
    const gx = Math.ceil(n / (direct ? DIRECT_TILE_N : TILE)), gy = Math.ceil(m / (direct ? DIRECT_TILE_M : TILE));
    const max = rt.limits.maxWorkgroupsPerDimension;
    if (gx > max || gy > max || batch.count > max) {
      throw new BackendError(`webgpu backend: matmul ${m}x${n} (batch ${batch.count}) needs ${gx}x${gy}x${batch.count} workgroups, over ${max} per dimension`);
    }
    rt.dispatch({
      key: direct ? matmulDirectKey(q.transA, q.transB, h) : matmulKey(q.transA, q.transB, h),
      source: () => (direct ? matmulDirectSource(q.transA, q.transB, h) : matmulSource(q.transA, q.transB, h)),
      storage: [a, b, out],
      writable: [false, false, true],
      uniforms: [matmulParams.pack({ m, n, k, alpha: q.alpha, beta: q.beta, sa: batch.sa, sb: batch.sb, sc: batch.sc })],
      workgroups: [gx, gy, batch.count],
    });
  }

  /** A 1x1 convolution with stride 1 and no padding is a product per image: it runs on the matmul. */
  const isPointwise = (c: import('@fr/core').Conv2dParams) =>
    c.kernelH === 1 && c.kernelW === 1 && c.strideH === 1 && c.strideW === 1 && c.padH === 0 && c.padW === 0 && c.groups === 1;

  /**
   * Decodes gid into (b, channel block, y, x) of the output ('o') or input ('i') image: `<s>x`,
   * `<s>y`, `<s>c` (first channel of the block of `block` channels) and `b`.
   */
  const pixelBlock = (side: 'o' | 'i', block: number) => `  let ${side}x = gid % p.${side}w;
  var t = gid / p.${side}w;
  let ${side}y = t % p.${side}h;
  t = t / p.${side}h;
  let ${side}cb = p.${side}c / ${block}u;
  let ${side}c = (t % ${side}cb) * ${block}u;
  let b = t / ${side}cb;`;

  /** Channels per thread of the convolution kernels: 4 when they divide evenly, else 1. */
  const convBlock = (channelsPerGroup: number) => (channelsPerGroup % 4 === 0 ? 4 : 1);

  const convFields: Fields = [
    ['batch', 'u32'], ['ic', 'u32'], ['ih', 'u32'], ['iw', 'u32'], ['oc', 'u32'], ['kh', 'u32'], ['kw', 'u32'],
    ['sh', 'u32'], ['sw', 'u32'], ['ph', 'u32'], ['pw', 'u32'], ['groups', 'u32'], ['oh', 'u32'], ['ow', 'u32'], ['n', 'u32'],
  ];
  const convValues = (c: import('@fr/core').Conv2dParams, n: number) => ({
    batch: c.batch, ic: c.inChannels, ih: c.inHeight, iw: c.inWidth, oc: c.outChannels, kh: c.kernelH, kw: c.kernelW,
    sh: c.strideH, sw: c.strideW, ph: c.padH, pw: c.padW, groups: c.groups, oh: c.outHeight, ow: c.outWidth, n,
  });

  return {
    fill(out, n, value) {
      if (out.dtype === 'float16') {
        // Whole words of two values; an odd count keeps the high half of the last word.
        const bits = float32ToFloat16Bits(value);
        const words = Math.ceil(n / 2);
        run('fillFloat16', '', () => elementwise(['o:u32!'], [['count', 'u32'], ['word', 'u32']], `  if (2u * gid + 1u < p.count) { o[gid] = p.word; }
  else { o[gid] = (o[gid] & 0xffff0000u) | (p.word & 0xffffu); }`), [out], { n: words, count: n, word: (bits | (bits << 16)) >>> 0 }, flat(words));
        return;
      }
      run('fill', '', () => elementwise(['o!'], [['value', 'f32']], '  o[gid] = p.value;'), [out], { n, value }, flat(n));
    },

    copy(src, dst, n, srcOffset, dstOffset) {
      if (src.dtype !== dst.dtype) {
        throw new BackendError(`webgpu backend: copy from ${src.dtype} to ${dst.dtype} (${src.label || 'a buffer'} to ${dst.label || 'a buffer'}); copy keeps the element type`);
      }
      if (src.dtype === 'float16') {
        // Words of two values: whole pairs only.
        if (n % 2 || srcOffset % 2 || dstOffset % 2) {
          throw new BackendError(`webgpu backend: float16 copies move pairs of values; got ${n} at ${srcOffset} -> ${dstOffset}`);
        }
        n /= 2;
        srcOffset /= 2;
        dstOffset /= 2;
      }
      // Words move as u32: a float16 pair read as f32 could be a NaN pattern a device may alter.
      const word = src.dtype === 'float16' ? ':u32' : '';
      run('copy', word, () => elementwise([`s${word}`, `d${word}!`], [['so', 'u32'], ['do_', 'u32']], '  d[p.do_ + gid] = s[p.so + gid];'),
        [src, dst], { n, so: srcOffset, do_: dstOffset }, flat(n));
    },

    matmul(a, b, out, q) {
      gemm(a, b, out, q);
    },

    toFloat16(src, dst, n) {
      // One thread per pair of values: a 32-bit word is written whole.
      const pairs = Math.ceil(n / 2);
      run('toFloat16', '', () => elementwise(['x', 'h:u32!'], [['count', 'u32']], `  let i = 2u * gid;
  let hi = select(0u, fr_half_bits(x[min(i + 1u, p.count - 1u)]), i + 1u < p.count);
  h[gid] = fr_half_bits(x[i]) | (hi << 16u);`, HALF_BITS), [src, dst], { n: pairs, count: n }, flat(pairs));
    },

    fromFloat16(src, dst, n) {
      run('fromFloat16', '', () => elementwise(['h:u32', 'x!'], [], '  x[gid] = unpack2x16float(h[gid >> 1u])[gid & 1u];'),
        [src, dst], { n }, flat(n));
    },

    unary(op, a, out, n) {
      run('unary', op, () => elementwise(['a', 'o!'], [], `  let x = a[gid];\n  o[gid] = ${unaryExpr[op]};`, MATH),
        [a, out], { n }, flat(n));
    },

    binary(op, a, b, out, n) {
      run('binary', op, () => elementwise(['xa', 'xb', 'o!'], [], `  let a = xa[gid];\n  let b = xb[gid];\n  o[gid] = ${binaryExpr[op]};`),
        [a, b, out], { n }, flat(n));
    },

    axpby(a, b, out, n, alpha, beta) {
      run('axpby', '', () => elementwise(['xa', 'xb', 'o!'], [['alpha', 'f32'], ['beta', 'f32']],
        '  o[gid] = p.alpha * xa[gid] + p.beta * xb[gid];'), [a, b, out], { n, alpha, beta }, flat(n));
    },

    scaleBy(a, scalar, out, n) {
      // The scalar is read before any write so that scaleBy(s, s, s, 1) works.
      run('scaleBy', '', () => elementwise(['xa', 'sc', 'o!'], [], '  let s = sc[0];\n  o[gid] = xa[gid] * s;'),
        [a, scalar, out], { n }, flat(n));
    },

    affine(a, out, n, alpha, beta) {
      run('affine', '', () => elementwise(['xa', 'o!'], [['alpha', 'f32'], ['beta', 'f32']], '  o[gid] = p.alpha * xa[gid] + p.beta;'),
        [a, out], { n, alpha, beta }, flat(n));
    },

    addRowVector(x, v, out, rows, cols) {
      const n = rows * cols;
      run('addRowVector', '', () => elementwise(['xa', 'v', 'o!'], [['cols', 'u32']], '  o[gid] = xa[gid] + v[gid % p.cols];'),
        [x, v, out], { n, cols }, flat(n));
    },

    reduceSum(x, out, rows, cols, axis) {
      if (axis === 1) {
        run('rowSum', '', rowSum, [x, out], { rows, cols, scale: 1 }, rows);
        return;
      }
      run('colSum', '', colSum, [x, out], { rows, cols }, flat(cols));
    },

    sumSquares(x, out, n) {
      // Pass 1: `parts` threads each sum a strided slice (no barriers, which are slow on software
      // adapters and leave a GPU mostly idle when one workgroup walks millions of elements).
      const parts = Math.max(1, Math.min(SUM_PARTS, Math.ceil(n / 64)));
      const partials = rt.scratch(parts * 4);
      run('sumSquaresPartial', '', () => ({
        fields: [['n', 'u32'], ['parts', 'u32']],
        buffers: ['x', 'y!'],
        main: (w) => flatMain(w, guard(`  var acc = 0.0;
  for (var i = gid; i < p.n; i = i + p.parts) { let v = x[i]; acc = acc + v * v; }
  y[gid] = acc;`, 'p.parts')),
      }), [x, partials], { n, parts }, flat(parts));
      sumPartials(partials, out, parts, 1);
    },

    l2normalizeRows(x, y, norms, rows, cols, eps) {
      if (threadPerRow(rows)) {
        // Many rows (classifier weights): one thread per row, no barriers.
        run('l2normalizeRowsThread', '', () => ({
          fields: [['rows', 'u32'], ['cols', 'u32'], ['eps', 'f32']],
          buffers: ['x', 'y!', 'norms!'],
          main: (w) => flatMain(w, guard(`  let base = gid * p.cols;
  var acc = 0.0;
  for (var c = 0u; c < p.cols; c = c + 1u) { let v = x[base + c]; acc = acc + v * v; }
  let norm = sqrt(acc);
  norms[gid] = norm;
  let d = max(norm, p.eps);
  for (var c = 0u; c < p.cols; c = c + 1u) { y[base + c] = x[base + c] / d; }`, 'p.rows')),
        }), [x, y, norms], { rows, cols, eps }, flat(rows));
        return;
      }
      run('l2normalizeRows', '', () => ({
        fields: [['rows', 'u32'], ['cols', 'u32'], ['eps', 'f32']],
        buffers: ['x', 'y!', 'norms!'],
        helpers: reductions(wg),
        main: (w) => groupMain(w, `
  if (grp >= p.rows) { return; }
  let base = grp * p.cols;
  var acc = 0.0;
  for (var c = lid; c < p.cols; c = c + ${w}u) { let v = x[base + c]; acc = acc + v * v; }
  let norm = sqrt(fr_sum(acc, lid));
  if (lid == 0u) { norms[grp] = norm; }
  let d = max(norm, p.eps);
  for (var c = lid; c < p.cols; c = c + ${w}u) { y[base + c] = x[base + c] / d; }`),
      }), [x, y, norms], { rows, cols, eps }, rows);
    },

    l2normalizeRowsBackward(gradY, y, norms, gradX, rows, cols, eps) {
      // Below eps the forward divided by a constant, so the projection term vanishes.
      const finish = (index: string) => `  let norm = norms[${index}];
  let proj = select(0.0, dot, norm > p.eps);
  let d = max(norm, p.eps);`;
      if (threadPerRow(rows)) {
        run('l2normalizeRowsBackwardThread', '', () => ({
          fields: [['rows', 'u32'], ['cols', 'u32'], ['eps', 'f32']],
          buffers: ['g', 'y', 'norms', 'gx!'],
          main: (w) => flatMain(w, guard(`  let base = gid * p.cols;
  var acc = 0.0;
  for (var c = 0u; c < p.cols; c = c + 1u) { acc = acc + g[base + c] * y[base + c]; }
  let dot = acc;
${finish('gid')}
  for (var c = 0u; c < p.cols; c = c + 1u) { gx[base + c] = (g[base + c] - proj * y[base + c]) / d; }`, 'p.rows')),
        }), [gradY, y, norms, gradX], { rows, cols, eps }, flat(rows));
        return;
      }
      run('l2normalizeRowsBackward', '', () => ({
        fields: [['rows', 'u32'], ['cols', 'u32'], ['eps', 'f32']],
        buffers: ['g', 'y', 'norms', 'gx!'],
        helpers: reductions(wg),
        main: (w) => groupMain(w, `
  if (grp >= p.rows) { return; }
  let base = grp * p.cols;
  var acc = 0.0;
  for (var c = lid; c < p.cols; c = c + ${w}u) { acc = acc + g[base + c] * y[base + c]; }
  let dot = fr_sum(acc, lid);
${finish('grp')}
  for (var c = lid; c < p.cols; c = c + ${w}u) { gx[base + c] = (g[base + c] - proj * y[base + c]) / d; }`),
      }), [gradY, y, norms, gradX], { rows, cols, eps }, rows);
    },

    sliceCols(x, out, rows, cols, start, width) {
      const n = rows * width;
      run('sliceCols', '', () => elementwise(['x', 'o!'], [['cols', 'u32'], ['start', 'u32'], ['width', 'u32']],
        '  o[gid] = x[(gid / p.width) * p.cols + p.start + gid % p.width];'), [x, out], { n, cols, start, width }, flat(n));
    },

    scatterCols(x, out, rows, cols, start, width, accumulate) {
      const n = rows * width;
      run('scatterCols', accumulate ? 'acc' : 'set', () => elementwise(['x', 'o!'], [['cols', 'u32'], ['start', 'u32'], ['width', 'u32']],
        `  let idx = (gid / p.width) * p.cols + p.start + gid % p.width;\n  o[idx] = ${accumulate ? 'o[idx] + x[gid]' : 'x[gid]'};`),
      [x, out], { n, cols, start, width }, flat(n));
    },

    gatherRows(x, index, out, count, cols) {
      const n = count * cols;
      run('gatherRows', '', () => elementwise(['x', 'index:i32', 'o!'], [['cols', 'u32']],
        '  o[gid] = x[u32(index[gid / p.cols]) * p.cols + gid % p.cols];'), [x, index, out], { n, cols }, flat(n));
    },

    scatterAddRows(x, index, out, count, cols) {
      const n = count * cols;
      // Indices are unique, so no two threads touch the same element.
      run('scatterAddRows', '', () => elementwise(['x', 'index:i32', 'o!'], [['cols', 'u32']],
        '  let idx = u32(index[gid / p.cols]) * p.cols + gid % p.cols;\n  o[idx] = o[idx] + x[gid];'),
      [x, index, out], { n, cols }, flat(n));
    },

    prelu(x, slope, out, q) {
      const n = q.outer * q.channels * q.inner;
      run('prelu', '', () => elementwise(['x', 's', 'o!'], [['channels', 'u32'], ['inner', 'u32']],
        '  let v = x[gid];\n  o[gid] = select(s[(gid / p.inner) % p.channels] * v, v, v > 0.0);'),
      [x, slope, out], { n, channels: q.channels, inner: q.inner }, flat(n));
    },

    preluBackward(gradOut, x, slope, gradX, gradSlope, q) {
      const { channels } = q;
      // Pass 1: each (channel, slice of outer) thread writes its gx and a partial slope gradient.
      const slices = channelSlices(q);
      const partials = rt.scratch(slices.count * channels * 4);
      run('preluBackward', '', () => ({
        fields: channelFields,
        buffers: ['g', 'x', 's', 'gx!', 'part!'],
        main: (w) => flatMain(w, guard(`${channelSliceHeader}
  let sl = s[c];
  var acc = 0.0;
${channelSliceLoop(`    let v = x[idx];
    let gv = g[idx];
    gx[idx] = select(sl * gv, gv, v > 0.0);
    if (v <= 0.0) { acc = acc + v * gv; }`)}
  part[gid] = acc;`, 'p.threads')),
      }), [gradOut, x, slope, gradX, partials], channelValues(q, slices), flat(slices.count * channels));
      sumPartials(partials, gradSlope, slices.count, channels);
    },

    marginLoss(q) {
      if (q.rows === 0 || q.cols === 0) return;
      const t = q.transform;
      const softmax = q.reducer === 'softmax-ce';
      const globalLse = softmax ? q.globalLogSumExp ?? null : null;
      const rowLse = softmax ? q.rowLogSumExp ?? null : null;
      // The optional per-row inputs (bias, context, global LSE) are packed into one scratch buffer,
      // which keeps the kernel at 7 storage bindings (WebGPU guarantees only 8 per stage).
      const layout = marginAuxLayout(q.rows);
      const parts = [[q.bias, layout.bias, 1], [q.rowContext, layout.ctx, q.rows], [globalLse, layout.lse, q.rows]] as const;
      const present = parts.filter(([b]) => b);
      const aux = present.length > 0 ? rt.scratch(layout.bytes) : rt.placeholder;
      const ctxGrad = q.rowContextGrad ?? null;
      if (ctxGrad && !(q.rowContext && t.contextGradient)) {
        throw new BackendError(`marginLoss: rowContextGrad needs a row context and a transform with contextGradient (${t.key} has ${t.contextGradient ? 'it' : 'none'})`);
      }
      const h = { halfLogits: q.halfLogits ?? false, halfGrad: q.halfGrad ?? false };
      for (const [flag, name, buffer] of [[h.halfLogits, 'halfLogits', q.logits], [h.halfGrad, 'halfGrad', q.grad]] as const) {
        if (flag !== (buffer.dtype === 'float16')) {
          throw new BackendError(`webgpu backend: marginLoss with ${name} ${flag} got a ${buffer.dtype} buffer (${buffer.label || 'unnamed'})`);
        }
      }
      const storage = [q.logits, q.labels, q.grad, q.rowLoss, q.rowLogitGrad, aux, rowLse ?? rt.placeholderOut];
      const writable = [false, false, true, true, true, false, true];
      const scratch = present.length > 0 ? [aux] : [];
      // The binding exists in the shader of a context-differentiable transform, asked for or not;
      // unasked, it gets its own scratch (placeholderOut may already be bound for the LSE).
      if (t.contextGradient) {
        const out = ctxGrad ?? rt.scratch(16);
        if (!ctxGrad) scratch.push(out);
        storage.push(out);
        writable.push(true);
      }
      rt.dispatch({
        key: marginLossKey(t, q.reducer, marginWg, h),
        source: () => marginLossSource(t, q.reducer, marginWg, h),
        storage,
        writable,
        uniforms: [marginLossUniforms(q, { globalLse: globalLse !== null, rowLse: rowLse !== null, rows: q.rows, contextGrad: ctxGrad !== null }), packTransformUniforms(t)],
        workgroups: rt.grid(q.rows),
        copies: present.map(([b, offset, n]) => ({ src: b!, dst: aux, dstOffset: offset * 4, bytes: n * 4 })),
        scratch,
      });
    },

    groupMax(x, out, index, rows, groups, size) {
      const n = rows * groups;
      run('groupMax', '', () => elementwise(['x', 'o!', 'index:i32!'], [['size', 'u32']], groupMaxBody), [x, out, index], { n, size }, flat(n));
    },

    sgdStep(param, grad, momentumBuffer, q) {
      run('sgdStep', '', () => elementwise(['w!', 'g', 'buf!'],
        [['lr', 'f32'], ['momentum', 'f32'], ['keep', 'f32'], ['wd', 'f32'], ['nesterov', 'u32']], `
  var d = g[gid] + p.wd * w[gid];
  if (p.momentum != 0.0) {
    let b = p.momentum * buf[gid] + p.keep * d;
    buf[gid] = b;
    d = select(b, d + p.momentum * b, p.nesterov != 0u);
  }
  w[gid] = w[gid] - p.lr * d;`),
      [param, grad, momentumBuffer],
      { n: q.n, lr: q.lr, momentum: q.momentum, keep: 1 - q.dampening, wd: q.weightDecay, nesterov: q.nesterov }, flat(q.n));
    },

    adamwStep(param, grad, m, v, q) {
      run('adamwStep', '', () => elementwise(['w!', 'g', 'm!', 'v!'],
        [['lr', 'f32'], ['decay', 'f32'], ['b1', 'f32'], ['ob1', 'f32'], ['b2', 'f32'], ['ob2', 'f32'], ['c1', 'f32'], ['c2', 'f32'], ['eps', 'f32']], `
  let gv = g[gid];
  let mv = p.b1 * m[gid] + p.ob1 * gv;
  let vv = p.b2 * v[gid] + p.ob2 * gv * gv;
  m[gid] = mv;
  v[gid] = vv;
  w[gid] = w[gid] * p.decay - (p.lr * (mv / p.c1)) / (sqrt(vv / p.c2) + p.eps);`),
      [param, grad, m, v], {
        n: q.n, lr: q.lr, decay: 1 - q.lr * q.weightDecay, b1: q.beta1, ob1: 1 - q.beta1, b2: q.beta2, ob2: 1 - q.beta2,
        c1: 1 - q.beta1 ** q.step, c2: 1 - q.beta2 ** q.step, eps: q.eps,
      }, flat(q.n));
    },

    conv2d(x, w, out, c) {
      if (isPointwise(c)) {
        // out_b [oc, P] = W [oc, ic] x_b [ic, P]
        const P = c.inHeight * c.inWidth;
        gemm(w, x, out, { m: c.outChannels, n: P, k: c.inChannels, transA: false, transB: false, alpha: 1, beta: 0 },
          { count: c.batch, sa: 0, sb: c.inChannels * P, sc: c.outChannels * P });
        return;
      }
      // Each thread computes `ob` output channels of one pixel, so every input value it loads
      // serves ob multiply-adds (4 when a group's output channels allow it).
      const ob = convBlock(c.outChannels / c.groups);
      const n = c.batch * (c.outChannels / ob) * c.outHeight * c.outWidth;
      const js = [...Array(ob).keys()];
      run('conv2d', `ob${ob}`, () => ({
        fields: convFields,
        buffers: ['x', 'w', 'o!'],
        main: (wgs) => flatMain(wgs, guard(`
${pixelBlock('o', ob)}
  let cin = p.ic / p.groups;
  let g = oc / (p.oc / p.groups);
  let wstride = cin * p.kh * p.kw;
  // The taps that land inside the image, found once: iy = oy * sh + ky - ph in [0, ih).
  let y0 = oy * p.sh;
  let x0 = ox * p.sw;
  let kyLo = select(0u, p.ph - y0, p.ph > y0);
  let kyHi = min(p.kh, select(0u, p.ih + p.ph - y0, p.ih + p.ph > y0));
  let kxLo = select(0u, p.pw - x0, p.pw > x0);
  let kxHi = min(p.kw, select(0u, p.iw + p.pw - x0, p.iw + p.pw > x0));
${js.map((j) => `  var acc${j} = 0.0;`).join('\n')}
  for (var ci = 0u; ci < cin; ci = ci + 1u) {
    let xc = (b * p.ic + g * cin + ci) * p.ih;
    let wc = (oc * cin + ci) * p.kh;
    for (var ky = kyLo; ky < kyHi; ky = ky + 1u) {
      // Row start shifted by -pw; kx >= kxLo keeps the index in the row.
      let xrow = (xc + y0 + ky - p.ph) * p.iw + x0 - p.pw;
      let wrow = (wc + ky) * p.kw;
      for (var kx = kxLo; kx < kxHi; kx = kx + 1u) {
        let xv = x[xrow + kx];
${js.map((j) => `        acc${j} = acc${j} + xv * w[wrow + kx${j ? ` + ${j}u * wstride` : ''}];`).join('\n')}
      }
    }
  }
  let obase = ((b * p.oc + oc) * p.oh + oy) * p.ow + ox;
  let plane = p.oh * p.ow;
${js.map((j) => `  o[obase${j ? ` + ${j}u * plane` : ''}] = acc${j};`).join('\n')}`)),
      }), [x, w, out], convValues(c, n), flat(n));
    },

    conv2dBackwardInput(gradOut, w, gradX, c) {
      if (isPointwise(c)) {
        // gx_b [ic, P] = W^T [ic, oc] go_b [oc, P]
        const P = c.inHeight * c.inWidth;
        gemm(w, gradOut, gradX, { m: c.inChannels, n: P, k: c.outChannels, transA: true, transB: false, alpha: 1, beta: 0 },
          { count: c.batch, sa: 0, sb: c.outChannels * P, sc: c.inChannels * P });
        return;
      }
      // Each thread computes `ib` input channels of one pixel (each loaded gradient serves ib).
      const cinPerGroup = c.inChannels / c.groups;
      const ib = convBlock(cinPerGroup);
      const n = c.batch * (c.inChannels / ib) * c.inHeight * c.inWidth;
      const js = [...Array(ib).keys()];
      run('conv2dBackwardInput', `ib${ib}`, () => ({
        fields: convFields,
        buffers: ['go', 'w', 'gx!'],
        main: (wgs) => flatMain(wgs, guard(`
${pixelBlock('i', ib)}
  let cin = p.ic / p.groups;
  let cout = p.oc / p.groups;
  let g = ic / cin;
  let ci = ic % cin;
  let taps = p.kh * p.kw;
  // Only kernel taps with ky = (iy + ph) mod sh (and likewise kx) reach an output pixel; their
  // ranges are found once, so the loops below have no modulo and no bounds test.
  let ty = iy + p.ph;
  let tx = ix + p.pw;
  let ky0 = ty % p.sh;
  let kx0 = tx % p.sw;
  // oy = (ty - ky) / sh < oh  <=>  ky > ty - oh * sh.
  let kyMin = select(ky0, ky0 + ((ty - p.oh * p.sh - ky0) / p.sh + 1u) * p.sh, ty >= p.oh * p.sh + ky0);
  let kxMin = select(kx0, kx0 + ((tx - p.ow * p.sw - kx0) / p.sw + 1u) * p.sw, tx >= p.ow * p.sw + kx0);
  let kyEnd = min(p.kh, ty + 1u);
  let kxEnd = min(p.kw, tx + 1u);
${js.map((j) => `  var acc${j} = 0.0;`).join('\n')}
  for (var co = 0u; co < cout; co = co + 1u) {
    let oc = g * cout + co;
    let gc = (b * p.oc + oc) * p.oh;
    let wc = (oc * cin + ci) * p.kh;
    // Each step of ky by sh moves the output row up by one (and likewise for columns).
    var oy = (ty - kyMin) / p.sh;
    for (var ky = kyMin; ky < kyEnd; ky = ky + p.sh) {
      let grow = (gc + oy) * p.ow;
      let wrow = (wc + ky) * p.kw;
      var ox = (tx - kxMin) / p.sw;
      for (var kx = kxMin; kx < kxEnd; kx = kx + p.sw) {
        let gv = go[grow + ox];
${js.map((j) => `        acc${j} = acc${j} + gv * w[wrow + kx${j ? ` + ${j}u * taps` : ''}];`).join('\n')}
        ox = ox - 1u;
      }
      oy = oy - 1u;
    }
  }
  let base = ((b * p.ic + ic) * p.ih + iy) * p.iw + ix;
  let plane = p.ih * p.iw;
${js.map((j) => `  gx[base${j ? ` + ${j}u * plane` : ''}] = acc${j};`).join('\n')}`)),
      }), [gradOut, w, gradX], convValues(c, n), flat(n));
    },

    conv2dBackwardWeight(gradOut, x, gradW, c) {
      if (isPointwise(c)) {
        // gW [oc, ic] = sum over b of go_b [oc, P] x_b^T [P, ic]: one product per image into a
        // scratch, then the sum over images.
        const P = c.inHeight * c.inWidth;
        const n = c.outChannels * c.inChannels;
        const target = c.batch === 1 ? gradW : rt.scratch(c.batch * n * 4);
        gemm(gradOut, x, target, { m: c.outChannels, n: c.inChannels, k: P, transA: false, transB: true, alpha: 1, beta: 0 },
          { count: c.batch, sa: c.outChannels * P, sb: c.inChannels * P, sc: n });
        if (c.batch > 1) sumPartials(target, gradW, c.batch, n);
        return;
      }
      // One thread per (`ob` output channels of one weight tap, batch slice), no barriers; with
      // few weights the batch is split into slices whose partial sums a second pass adds, so the
      // device still has enough threads. Each loaded input value serves ob multiply-adds.
      const cinPerGroup = c.inChannels / c.groups;
      const ob = convBlock(c.outChannels / c.groups);
      const n = c.outChannels * cinPerGroup * c.kernelH * c.kernelW;
      const blocks = n / ob;
      const slices = Math.max(1, Math.min(c.batch, Math.ceil(CONV_WEIGHT_THREADS / blocks)));
      const chunk = Math.ceil(c.batch / slices);
      const target = slices === 1 ? gradW : rt.scratch(slices * n * 4);
      const js = [...Array(ob).keys()];
      run('conv2dBackwardWeight', `ob${ob}`, () => ({
        fields: [...convFields, ['chunk', 'u32'], ['blocks', 'u32'], ['total', 'u32']],
        buffers: ['go', 'x', 'gw!'],
        main: (wgs) => flatMain(wgs, guard(`
  let wb = gid % p.blocks;
  let slice = gid / p.blocks;
  let kx = wb % p.kw;
  var t = wb / p.kw;
  let ky = t % p.kh;
  t = t / p.kh;
  let cin = p.ic / p.groups;
  let ci = t % cin;
  let oc = (t / cin) * ${ob}u;
  let ic = (oc / (p.oc / p.groups)) * cin + ci;
  // Output rows and columns whose input pixel is inside the image: no per-pixel bounds test.
  let oy0 = select(0u, (p.ph - ky + p.sh - 1u) / p.sh, p.ph > ky);
  let oy1 = min(p.oh, select(0u, (p.ih + p.ph - ky - 1u) / p.sh + 1u, p.ih + p.ph > ky));
  let ox0 = select(0u, (p.pw - kx + p.sw - 1u) / p.sw, p.pw > kx);
  let ox1 = min(p.ow, select(0u, (p.iw + p.pw - kx - 1u) / p.sw + 1u, p.iw + p.pw > kx));
  let per = p.oh * p.ow;
  let b1 = min(p.batch, (slice + 1u) * p.chunk);
${js.map((j) => `  var acc${j} = 0.0;`).join('\n')}
  for (var b = slice * p.chunk; b < b1; b = b + 1u) {
    let gbase = (b * p.oc + oc) * per;
    let xbase = (b * p.ic + ic) * p.ih;
    for (var oy = oy0; oy < oy1; oy = oy + 1u) {
      let grow = gbase + oy * p.ow;
      let xrow = (xbase + oy * p.sh + ky - p.ph) * p.iw + kx - p.pw;
      for (var ox = ox0; ox < ox1; ox = ox + 1u) {
        let xv = x[xrow + ox * p.sw];
${js.map((j) => `        acc${j} = acc${j} + go[grow + ox${j ? ` + ${j}u * per` : ''}] * xv;`).join('\n')}
      }
    }
  }
  let wstride = cin * p.kh * p.kw;
  let out = slice * p.n + (oc * cin + ci) * p.kh * p.kw + ky * p.kw + kx;
${js.map((j) => `  gw[out${j ? ` + ${j}u * wstride` : ''}] = acc${j};`).join('\n')}`, 'p.total')),
      }), [gradOut, x, target], { ...convValues(c, n), chunk, blocks, total: blocks * slices }, flat(blocks * slices));
      if (slices > 1) sumPartials(target, gradW, slices, n);
    },

    batchNorm(x, gamma, beta, mean, variance, out, q) {
      const { outer, channels, inner } = q;
      if (q.training) {
        // Pass 1: count, mean and squared deviations of each (channel, slice) (two passes over
        // the slice, as torch computes variance); pass 2 merges the slices per channel (Chan et al.).
        const slices = channelSlices(q);
        const partials = rt.scratch(2 * slices.count * channels * 4);
        run('batchNormStats', '', () => ({
          fields: channelFields,
          buffers: ['x', 'part!'],
          main: (w) => flatMain(w, guard(`${channelSliceHeader}
  var acc = 0.0;
${channelSliceLoop('    acc = acc + x[idx];')}
  let n = f32(t1 - t0);
  let mu = acc / max(n, 1.0);
  var m2 = 0.0;
${channelSliceLoop('    let d = x[idx] - mu;\n    m2 = m2 + d * d;')}
  part[gid] = mu;
  part[p.threads + gid] = m2;`, 'p.threads')),
        }), [x, partials], channelValues(q, slices), flat(slices.count * channels));
        run('batchNormMerge', '', () => ({
          fields: channelFields,
          buffers: ['part', 'mean!', 'variance!'],
          main: (w) => flatMain(w, guard(`  var n = 0.0;
  var mu = 0.0;
  var m2 = 0.0;
  for (var sl = 0u; sl < p.slices; sl = sl + 1u) {
    let t0 = sl * p.chunk;
    let t1 = min(p.outer * p.inner, t0 + p.chunk);
    if (t1 <= t0) { break; }
    let nb = f32(t1 - t0);
    let i = sl * p.channels + gid;
    let delta = part[i] - mu;
    let total = n + nb;
    mu = mu + delta * nb / total;
    m2 = m2 + part[p.threads + i] + delta * delta * n * nb / total;
    n = total;
  }
  mean[gid] = mu;
  variance[gid] = m2 / n;`, 'p.channels')),
        }), [partials, mean, variance], channelValues(q, slices), flat(channels), [partials]);
      }
      const n = outer * channels * inner;
      run('batchNormApply', '', () => ({
        fields: [['n', 'u32'], ['channels', 'u32'], ['inner', 'u32'], ['eps', 'f32']],
        buffers: ['x', 'gamma', 'beta', 'mean', 'variance', 'o!'],
        main: (w) => flatMain(w, guard(`  let c = (gid / p.inner) % p.channels;
  let inv = 1.0 / sqrt(variance[c] + p.eps);
  o[gid] = (x[gid] - mean[c]) * inv * gamma[c] + beta[c];`)),
      }), [x, gamma, beta, mean, variance, out], { n, channels, inner, eps: q.eps }, flat(n));
    },

    batchNormBackward(gradOut, x, gamma, mean, variance, gradX, gradGamma, gradBeta, q) {
      const { outer, channels, inner } = q;
      // Pass 1: partial sums of g and g * xhat per (channel, slice); pass 2 adds them into the
      // gamma and beta gradients; pass 3 is elementwise (training: through the batch statistics).
      const slices = channelSlices(q);
      const partials = rt.scratch(2 * slices.count * channels * 4);
      run('batchNormBackwardSums', '', () => ({
        fields: [...channelFields, ['eps', 'f32']],
        buffers: ['g', 'x', 'mean', 'variance', 'part!'],
        main: (w) => flatMain(w, guard(`${channelSliceHeader}
  let mu = mean[c];
  let inv = 1.0 / sqrt(variance[c] + p.eps);
  var sg = 0.0;
  var sgx = 0.0;
${channelSliceLoop('    let gv = g[idx];\n    sg = sg + gv;\n    sgx = sgx + gv * (x[idx] - mu) * inv;')}
  part[gid] = sg;
  part[p.threads + gid] = sgx;`, 'p.threads')),
      }), [gradOut, x, mean, variance, partials], { ...channelValues(q, slices), eps: q.eps }, flat(slices.count * channels));
      run('batchNormBackwardMerge', '', () => ({
        fields: channelFields,
        buffers: ['part', 'ggamma!', 'gbeta!'],
        main: (w) => flatMain(w, guard(`  var sg = 0.0;
  var sgx = 0.0;
  for (var sl = 0u; sl < p.slices; sl = sl + 1u) {
    sg = sg + part[sl * p.channels + gid];
    sgx = sgx + part[p.threads + sl * p.channels + gid];
  }
  gbeta[gid] = sg;
  ggamma[gid] = sgx;`, 'p.channels')),
      }), [partials, gradGamma, gradBeta], channelValues(q, slices), flat(channels), [partials]);
      const n = outer * channels * inner;
      run('batchNormBackwardApply', q.training ? 'train' : 'eval', () => ({
        fields: [['n', 'u32'], ['channels', 'u32'], ['inner', 'u32'], ['eps', 'f32'], ['count', 'f32']],
        buffers: ['g', 'x', 'gamma', 'mean', 'variance', 'ggamma', 'gbeta', 'gx!'],
        main: (w) => flatMain(w, guard(`  let c = (gid / p.inner) % p.channels;
  let inv = 1.0 / sqrt(variance[c] + p.eps);
  let k = gamma[c] * inv;
  ${q.training
    ? 'gx[gid] = k * (g[gid] - gbeta[c] / p.count - (x[gid] - mean[c]) * inv * ggamma[c] / p.count);'
    : 'gx[gid] = k * g[gid];'}`)),
      }), [gradOut, x, gamma, mean, variance, gradGamma, gradBeta, gradX], { n, channels, inner, eps: q.eps, count: outer * inner }, flat(n));
    },

    dropout(x, out, mask, n, prob, seed) {
      // keep iff hash24 / 2^24 >= p, i.e. hash24 >= ceil(p * 2^24): exact, unlike an f32 compare.
      const threshold = Math.min(2 ** 24, Math.max(0, Math.ceil(prob * 2 ** 24)));
      run('dropout', '', () => elementwise(['x', 'o!', 'mask!'], [['seed', 'u32'], ['threshold', 'u32'], ['keep', 'f32']], `
  let h = fr_pcg_hash(gid ^ fr_pcg_hash(p.seed)) >> 8u;
  let m = select(0.0, p.keep, h >= p.threshold);
  mask[gid] = m;
  o[gid] = x[gid] * m;`, WGSL_HASH_UNIFORM),
      [x, out, mask], { n, seed: seed >>> 0, threshold, keep: 1 / (1 - prob) }, flat(n));
    },

    globalAvgPool(x, out, q) {
      const rows = q.outer * q.channels;
      run('rowSum', '', rowSum, [x, out], { rows, cols: q.inner, scale: 1 / q.inner }, rows);
    },

    globalAvgPoolBackward(gradOut, gradX, q) {
      const n = q.outer * q.channels * q.inner;
      run('globalAvgPoolBackward', '', () => elementwise(['g', 'gx!'], [['inner', 'u32'], ['scale', 'f32']],
        '  gx[gid] = g[gid / p.inner] * p.scale;'), [gradOut, gradX], { n, inner: q.inner, scale: 1 / q.inner }, flat(n));
    },
  };
}
