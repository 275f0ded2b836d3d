/**
 * The layer kernels: PReLU, convolution (direct, or on the matmul when 1x1), batch norm, dropout
 * and global average pooling, each forward next to its backward. Semantics follow
 * @fr/backend-cpu's layers.ts exactly; arithmetic is float32.
 */
import { WGSL_HASH_UNIFORM, type Conv2dParams, type KernelTable } from '@fr/core';
import type { Fields, KernelContext } from './kernel-context.js';
import type { GpuBuffer } from './runtime.js';
import { flatMain } from './wgsl.js';

/** Threads the weight gradient of a convolution aims for (weights x batch slices). */
const CONV_WEIGHT_THREADS = 16384;

type LayerKernel = 'prelu' | 'preluBackward' | 'conv2d' | 'conv2dBackwardInput' | 'conv2dBackwardWeight' | 'batchNorm' | 'batchNormBackward'
  | 'dropout' | 'globalAvgPool' | 'globalAvgPoolBackward';

export function layerKernels(ctx: KernelContext): Pick<KernelTable<GpuBuffer>, LayerKernel> {
  const { rt, run, flat, guard, elementwise, rowSum, sumPartials, channelSlices, channelFields, channelValues, channelSliceHeader, channelSliceLoop, gemm } = ctx;
  /** A 1x1 convolution with stride 1 and no padding is a product per image: it runs on the matmul. */
  const isPointwise = (c: Conv2dParams) =>
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
  const convValues = (c: Conv2dParams, n: number) => ({
    batch: c.batch, ic: c.inChannels, ih: c.inHeight, iw: c.inWidth, oc: c.outChannels, kh: c.kernelH, kw: c.kernelW,
    sh: c.strideH, sw: c.strideW, ph: c.padH, pw: c.padW, groups: c.groups, oh: c.outHeight, ow: c.outWidth, n,
  });


  return {
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
