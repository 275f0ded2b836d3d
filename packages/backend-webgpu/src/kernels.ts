/**
 * Every kernel of the table as a dispatch description. Scalars and shapes go in uniforms, so a
 * pipeline is compiled once per (kernel, specialisation, workgroup size) and serves every shape.
 * Semantics follow @fr/backend-cpu exactly; arithmetic is float32.
 */
import { BackendError, WGSL_HASH_UNIFORM, type BinaryOp, type KernelTable, type UnaryOp } from '@fr/core';
import { groupMaxBody } from './group-max.js';
import { marginAuxLayout, marginLossKey, marginLossSource, marginLossUniforms, packTransformUniforms } from './margin-loss.js';
import { matmulKey, matmulParams, matmulSource, TILE } from './matmul.js';
import type { GpuBuffer, Runtime } from './runtime.js';
import { uniformLayout, type ScalarType } from './uniforms.js';
import { flatMain, groupMain, MATH, parseBinding, reductions, storage, uniform } from './wgsl.js';

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

export function createKernels(rt: Runtime, wg: number): KernelTable<GpuBuffer> {
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
    });
  }

  const flat = (n: number) => Math.ceil(n / wg);
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
      run('fill', '', () => elementwise(['o!'], [['value', 'f32']], '  o[gid] = p.value;'), [out], { n, value }, flat(n));
    },

    copy(src, dst, n, srcOffset, dstOffset) {
      run('copy', '', () => elementwise(['s', 'd!'], [['so', 'u32'], ['do_', 'u32']], '  d[p.do_ + gid] = s[p.so + gid];'),
        [src, dst], { n, so: srcOffset, do_: dstOffset }, flat(n));
    },

    matmul(a, b, out, q) {
      const { m, n, k } = q;
      if (m === 0 || n === 0) return;
      const gx = Math.ceil(n / TILE), gy = Math.ceil(m / TILE);
      const max = rt.limits.maxWorkgroupsPerDimension;
      if (gx > max || gy > max) throw new BackendError(`webgpu backend: matmul ${m}x${n} needs ${gx}x${gy} workgroups, over ${max} per dimension`);
      rt.dispatch({
        key: matmulKey(q.transA, q.transB),
        source: () => matmulSource(q.transA, q.transB),
        storage: [a, b, out],
        writable: [false, false, true],
        uniforms: [matmulParams.pack({ m, n, k, alpha: q.alpha, beta: q.beta })],
        workgroups: [gx, gy],
      });
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
      run('colSum', '', () => ({
        fields: [['rows', 'u32'], ['cols', 'u32']],
        buffers: ['x', 'y!'],
        main: (w) => flatMain(w, guard(`  var acc = 0.0;
  for (var r = 0u; r < p.rows; r = r + 1u) { acc = acc + x[r * p.cols + gid]; }
  y[gid] = acc;`, 'p.cols')),
      }), [x, out], { rows, cols }, flat(cols));
    },

    sumSquares(x, out, n) {
      run('sumSquares', '', () => ({
        fields: [['n', 'u32']],
        buffers: ['x', 'y!'],
        helpers: reductions(wg),
        main: (w) => groupMain(w, `
  var acc = 0.0;
  for (var i = lid; i < p.n; i = i + ${w}u) { let v = x[i]; acc = acc + v * v; }
  let total = fr_sum(acc, lid);
  if (lid == 0u) { y[0] = total; }`),
      }), [x, out], { n }, 1);
    },

    l2normalizeRows(x, y, norms, rows, cols, eps) {
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
  let norm = norms[grp];
  // Below eps the forward divided by a constant, so the projection term vanishes.
  let proj = select(0.0, dot, norm > p.eps);
  let d = max(norm, p.eps);
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
      run('preluBackward', '', () => ({
        fields: [['outer', 'u32'], ['channels', 'u32'], ['inner', 'u32']],
        buffers: ['g', 'x', 's', 'gx!', 'gs!'],
        helpers: reductions(wg),
        main: (w) => groupMain(w, `
  if (grp >= p.channels) { return; }
  let sl = s[grp];
  var acc = 0.0;
  let total = p.outer * p.inner;
  for (var t = lid; t < total; t = t + ${w}u) {
    let idx = ((t / p.inner) * p.channels + grp) * p.inner + t % p.inner;
    let v = x[idx];
    let gv = g[idx];
    gx[idx] = select(sl * gv, gv, v > 0.0);
    if (v <= 0.0) { acc = acc + v * gv; }
  }
  let sum = fr_sum(acc, lid);
  if (lid == 0u) { gs[grp] = sum; }`),
      }), [gradOut, x, slope, gradX, gradSlope], { outer: q.outer, channels: q.channels, inner: q.inner }, q.channels);
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
        key: marginLossKey(t, q.reducer, wg),
        source: () => marginLossSource(t, q.reducer, wg),
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
      const n = c.batch * c.outChannels * c.outHeight * c.outWidth;
      run('conv2d', '', () => ({
        fields: convFields,
        buffers: ['x', 'w', 'o!'],
        main: (wgs) => flatMain(wgs, guard(`
  let ox = gid % p.ow;
  var t = gid / p.ow;
  let oy = t % p.oh;
  t = t / p.oh;
  let oc = t % p.oc;
  let b = t / p.oc;
  let cin = p.ic / p.groups;
  let g = oc / (p.oc / p.groups);
  var acc = 0.0;
  for (var ci = 0u; ci < cin; ci = ci + 1u) {
    let xc = (b * p.ic + g * cin + ci) * p.ih;
    let wc = (oc * cin + ci) * p.kh;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
      let iy = i32(oy * p.sh + ky) - i32(p.ph);
      if (iy < 0 || iy >= i32(p.ih)) { continue; }
      for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
        let ix = i32(ox * p.sw + kx) - i32(p.pw);
        if (ix < 0 || ix >= i32(p.iw)) { continue; }
        acc = acc + x[(xc + u32(iy)) * p.iw + u32(ix)] * w[(wc + ky) * p.kw + kx];
      }
    }
  }
  o[gid] = acc;`)),
      }), [x, w, out], convValues(c, n), flat(n));
    },

    conv2dBackwardInput(gradOut, w, gradX, c) {
      const n = c.batch * c.inChannels * c.inHeight * c.inWidth;
      run('conv2dBackwardInput', '', () => ({
        fields: convFields,
        buffers: ['go', 'w', 'gx!'],
        main: (wgs) => flatMain(wgs, guard(`
  let ix = gid % p.iw;
  var t = gid / p.iw;
  let iy = t % p.ih;
  t = t / p.ih;
  let ic = t % p.ic;
  let b = t / p.ic;
  let cin = p.ic / p.groups;
  let cout = p.oc / p.groups;
  let g = ic / cin;
  let ci = ic % cin;
  var acc = 0.0;
  for (var co = 0u; co < cout; co = co + 1u) {
    let oc = g * cout + co;
    let gc = (b * p.oc + oc) * p.oh;
    let wc = (oc * cin + ci) * p.kh;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
      let ty = i32(iy + p.ph) - i32(ky);
      if (ty < 0 || ty % i32(p.sh) != 0) { continue; }
      let oy = u32(ty) / p.sh;
      if (oy >= p.oh) { continue; }
      for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
        let tx = i32(ix + p.pw) - i32(kx);
        if (tx < 0 || tx % i32(p.sw) != 0) { continue; }
        let ox = u32(tx) / p.sw;
        if (ox >= p.ow) { continue; }
        acc = acc + go[(gc + oy) * p.ow + ox] * w[(wc + ky) * p.kw + kx];
      }
    }
  }
  gx[gid] = acc;`)),
      }), [gradOut, w, gradX], convValues(c, n), flat(n));
    },

    conv2dBackwardWeight(gradOut, x, gradW, c) {
      const n = c.outChannels * (c.inChannels / c.groups) * c.kernelH * c.kernelW;
      // One workgroup per weight: the sum runs over batch x output pixels, which is the long axis.
      run('conv2dBackwardWeight', '', () => ({
        fields: convFields,
        buffers: ['go', 'x', 'gw!'],
        helpers: reductions(wg),
        main: (wgs) => groupMain(wgs, `
  if (grp >= p.n) { return; }
  let kx = grp % p.kw;
  var t = grp / p.kw;
  let ky = t % p.kh;
  t = t / p.kh;
  let cin = p.ic / p.groups;
  let ci = t % cin;
  let oc = t / cin;
  let ic = (oc / (p.oc / p.groups)) * cin + ci;
  let per = p.oh * p.ow;
  let total = p.batch * per;
  var acc = 0.0;
  for (var s = lid; s < total; s = s + ${wgs}u) {
    let b = s / per;
    let r = s % per;
    let oy = r / p.ow;
    let ox = r % p.ow;
    let iy = i32(oy * p.sh + ky) - i32(p.ph);
    let ix = i32(ox * p.sw + kx) - i32(p.pw);
    if (iy < 0 || iy >= i32(p.ih) || ix < 0 || ix >= i32(p.iw)) { continue; }
    acc = acc + go[(b * p.oc + oc) * per + r] * x[((b * p.ic + ic) * p.ih + u32(iy)) * p.iw + u32(ix)];
  }
  let sum = fr_sum(acc, lid);
  if (lid == 0u) { gw[grp] = sum; }`),
      }), [gradOut, x, gradW], convValues(c, n), n);
    },

    batchNorm(x, gamma, beta, mean, variance, out, q) {
      run('batchNorm', q.training ? 'train' : 'eval', () => ({
        fields: [['outer', 'u32'], ['channels', 'u32'], ['inner', 'u32'], ['eps', 'f32']],
        buffers: ['x', 'gamma', 'beta', 'mean!', 'variance!', 'o!'],
        helpers: reductions(wg),
        main: (w) => groupMain(w, `
  if (grp >= p.channels) { return; }
  let total = p.outer * p.inner;
  ${q.training ? `
  var acc = 0.0;
  for (var t = lid; t < total; t = t + ${w}u) { acc = acc + x[((t / p.inner) * p.channels + grp) * p.inner + t % p.inner]; }
  let mu = fr_sum(acc, lid) / f32(total);
  var acc2 = 0.0;
  for (var t = lid; t < total; t = t + ${w}u) {
    let d = x[((t / p.inner) * p.channels + grp) * p.inner + t % p.inner] - mu;
    acc2 = acc2 + d * d;
  }
  let var_ = fr_sum(acc2, lid) / f32(total);
  if (lid == 0u) { mean[grp] = mu; variance[grp] = var_; }` : `
  let mu = mean[grp];
  let var_ = variance[grp];`}
  let inv = 1.0 / sqrt(var_ + p.eps);
  let ga = gamma[grp];
  let be = beta[grp];
  for (var t = lid; t < total; t = t + ${w}u) {
    let idx = ((t / p.inner) * p.channels + grp) * p.inner + t % p.inner;
    o[idx] = (x[idx] - mu) * inv * ga + be;
  }`),
      }), [x, gamma, beta, mean, variance, out], { outer: q.outer, channels: q.channels, inner: q.inner, eps: q.eps }, q.channels);
    },

    batchNormBackward(gradOut, x, gamma, mean, variance, gradX, gradGamma, gradBeta, q) {
      run('batchNormBackward', q.training ? 'train' : 'eval', () => ({
        fields: [['outer', 'u32'], ['channels', 'u32'], ['inner', 'u32'], ['eps', 'f32']],
        buffers: ['g', 'x', 'gamma', 'mean', 'variance', 'gx!', 'ggamma!', 'gbeta!'],
        helpers: reductions(wg, 2),
        main: (w) => groupMain(w, `
  if (grp >= p.channels) { return; }
  let total = p.outer * p.inner;
  let mu = mean[grp];
  let inv = 1.0 / sqrt(variance[grp] + p.eps);
  var sg = 0.0;
  var sgx = 0.0;
  for (var t = lid; t < total; t = t + ${w}u) {
    let idx = ((t / p.inner) * p.channels + grp) * p.inner + t % p.inner;
    let gv = g[idx];
    sg = sg + gv;
    sgx = sgx + gv * (x[idx] - mu) * inv;
  }
  let sums = fr_sum2(sg, sgx, lid);
  if (lid == 0u) { ggamma[grp] = sums.y; gbeta[grp] = sums.x; }
  let k = gamma[grp] * inv;
  let nf = f32(total);
  for (var t = lid; t < total; t = t + ${w}u) {
    let idx = ((t / p.inner) * p.channels + grp) * p.inner + t % p.inner;
    ${q.training
    ? 'gx[idx] = k * (g[idx] - sums.x / nf - (x[idx] - mu) * inv * sums.y / nf);'
    : 'gx[idx] = k * g[idx];'}
  }`),
      }), [gradOut, x, gamma, mean, variance, gradX, gradGamma, gradBeta],
      { outer: q.outer, channels: q.channels, inner: q.inner, eps: q.eps }, q.channels);
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
