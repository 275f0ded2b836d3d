/**
 * The kernel table as dispatch descriptions: elementwise ops, reductions, row operations, the
 * margin loss and the optimizer steps here; the layers (convolution, batch norm, PReLU, dropout,
 * pooling) in layers.ts; what they share (dispatch, reduction shapes, the matmul) in
 * kernel-context.ts. Scalars and shapes go in uniforms, so a pipeline is compiled once per
 * (kernel, specialisation, workgroup size) and serves every shape. Semantics follow
 * @fr/backend-cpu exactly; arithmetic is float32.
 */
import { BackendError, float32ToFloat16Bits, type BinaryOp, type KernelTable, type UnaryOp } from '@fr/core';
import { groupMaxBackwardBody, groupMaxBody } from './group-max.js';
import { createKernelContext, type KernelOptions } from './kernel-context.js';
import { layerKernels } from './layers.js';
import { marginAuxLayout, marginLossKey, marginLossSource, marginLossUniforms, packTransformUniforms } from './margin-loss.js';
import type { GpuBuffer, Runtime } from './runtime.js';
import { flatMain, groupMain, HALF_BITS, MATH, reductions } from './wgsl.js';

/** Threads of the first pass of sumSquares (each sums a strided slice). */
const SUM_PARTS = 4096;

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

export type { KernelOptions } from './kernel-context.js';

export function createKernels(rt: Runtime, wg: number, options: KernelOptions): KernelTable<GpuBuffer> {
  const ctx = createKernelContext(rt, wg, options);
  const { run, flat, threadPerRow, marginWg, guard, elementwise, rowSum, colSum, sumPartials, gemm } = ctx;
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

    groupMaxBackward(x, out, gradOut, gradX, rows, groups, size) {
      const n = rows * groups * size;
      run('groupMaxBackward', '', () => elementwise(['x', 'mx', 'g', 'dx!'], [['size', 'u32']], groupMaxBackwardBody), [x, out, gradOut, gradX], { n, size }, flat(n));
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

    ...layerKernels(ctx),
  };
}
