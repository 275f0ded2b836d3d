/**
 * Layer kernels (convolution, normalisation, dropout, pooling) of the CPU backend.
 *
 * Convolution takes two routes. Groups with several input and output channels go through
 * im2col + the blocked matmul of matmul.ts: patches of a chunk of the batch are laid out as rows
 * (outputPixel, kernelElement), so W_g (Og x K) times that matrix transposed is a GEMM with neither
 * operand repacked. Groups of one or two channels (depthwise, MobileFaceNet's groups of 2) would
 * make GEMMs of 1-2 rows, so they run as direct per-channel-pair loops whose inner loop walks one
 * output row with no bounds checks (the valid range is computed per kernel tap).
 * Sums run in float64 (JS numbers), stored in float32.
 */
import { hashUniform, type BatchNormParams, type ChannelLayout, type Conv2dParams } from '@fr/core';
import { f32, type CpuBuffer } from './buffer.js';
import { matmul } from './matmul.js';

const wrap = (data: Float32Array): CpuBuffer => ({ dtype: 'float32', data, label: '' });

/** Largest im2col matrix built at once, in elements (16 MiB of float32). */
const COL_BUDGET = 4 * 1024 * 1024;

/** Valid output range [lo, hi) along one axis for kernel tap `k`: 0 <= o*stride - pad + k < size. */
function validRange(k: number, stride: number, pad: number, size: number, outSize: number): [number, number] {
  const lo = Math.max(0, Math.ceil((pad - k) / stride));
  const hi = Math.min(outSize, Math.floor((size - 1 + pad - k) / stride) + 1);
  return [lo, Math.max(lo, hi)];
}

function usesDirect(p: Conv2dParams): boolean {
  const cg = p.inChannels / p.groups;
  const og = p.outChannels / p.groups;
  return cg * og <= 4;
}

/** Batch chunk so that the im2col matrix of one group stays under COL_BUDGET. */
function chunkSize(p: Conv2dParams): number {
  const k = (p.inChannels / p.groups) * p.kernelH * p.kernelW;
  const perSample = k * p.outHeight * p.outWidth;
  return Math.max(1, Math.min(p.batch, Math.floor(COL_BUDGET / Math.max(1, perSample))));
}

/** Rows (n, oy, ox) x columns (ci, ky, kx) of samples [n0, n0 + count), channels of group g. */
function im2colRows(x: Float32Array, col: Float32Array, p: Conv2dParams, n0: number, count: number, g: number): void {
  const cg = p.inChannels / p.groups;
  const { kernelH: kh, kernelW: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = p;
  const K = cg * kh * kw;
  let row = 0;
  for (let n = n0; n < n0 + count; n++) {
    const xBase = (n * p.inChannels + g * cg) * H * W;
    for (let oy = 0; oy < Ho; oy++) {
      const iy0 = oy * p.strideH - p.padH;
      for (let ox = 0; ox < Wo; ox++, row++) {
        const ix0 = ox * p.strideW - p.padW;
        let c = row * K;
        for (let ci = 0; ci < cg; ci++) {
          const cBase = xBase + ci * H * W;
          for (let ky = 0; ky < kh; ky++) {
            const iy = iy0 + ky;
            if (iy < 0 || iy >= H) {
              for (let kx = 0; kx < kw; kx++) col[c++] = 0;
              continue;
            }
            const rBase = cBase + iy * W;
            for (let kx = 0; kx < kw; kx++) {
              const ix = ix0 + kx;
              col[c++] = ix >= 0 && ix < W ? x[rBase + ix] : 0;
            }
          }
        }
      }
    }
  }
}

/** The adjoint of im2colRows: adds each patch row back into gradX. */
function col2imRows(col: Float32Array, gx: Float32Array, p: Conv2dParams, n0: number, count: number, g: number): void {
  const cg = p.inChannels / p.groups;
  const { kernelH: kh, kernelW: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = p;
  const K = cg * kh * kw;
  let row = 0;
  for (let n = n0; n < n0 + count; n++) {
    const xBase = (n * p.inChannels + g * cg) * H * W;
    for (let oy = 0; oy < Ho; oy++) {
      const iy0 = oy * p.strideH - p.padH;
      for (let ox = 0; ox < Wo; ox++, row++) {
        const ix0 = ox * p.strideW - p.padW;
        let c = row * K;
        for (let ci = 0; ci < cg; ci++) {
          const cBase = xBase + ci * H * W;
          for (let ky = 0; ky < kh; ky++) {
            const iy = iy0 + ky;
            if (iy < 0 || iy >= H) {
              c += kw;
              continue;
            }
            const rBase = cBase + iy * W;
            for (let kx = 0; kx < kw; kx++, c++) {
              const ix = ix0 + kx;
              if (ix >= 0 && ix < W) gx[rBase + ix] += col[c];
            }
          }
        }
      }
    }
  }
}

/** Copies out[n0..n0+count, g*Og..(g+1)*Og, :] to or from a [Og, count * P] matrix. */
function shuffleGroupRows(nchw: Float32Array, mat: Float32Array, p: Conv2dParams, n0: number, count: number, g: number, toMat: boolean): void {
  const og = p.outChannels / p.groups;
  const P = p.outHeight * p.outWidth;
  for (let o = 0; o < og; o++) {
    for (let j = 0; j < count; j++) {
      const src = ((n0 + j) * p.outChannels + g * og + o) * P;
      const dst = (o * count + j) * P;
      if (toMat) mat.set(nchw.subarray(src, src + P), dst);
      else nchw.set(mat.subarray(dst, dst + P), src);
    }
  }
}

// --- direct route: one (output channel, input channel) pair at a time -----------------------

function directForward(x: Float32Array, w: Float32Array, out: Float32Array, p: Conv2dParams): void {
  const cg = p.inChannels / p.groups, og = p.outChannels / p.groups;
  const { kernelH: kh, kernelW: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo, strideH: sh, strideW: sw } = p;
  out.fill(0, 0, p.batch * p.outChannels * Ho * Wo);
  const acc = new Float64Array(Ho * Wo);
  for (let n = 0; n < p.batch; n++) {
    for (let o = 0; o < p.outChannels; o++) {
      const g = Math.floor(o / og);
      acc.fill(0);
      for (let ci = 0; ci < cg; ci++) {
        const xBase = (n * p.inChannels + g * cg + ci) * H * W;
        const wBase = (o * cg + ci) * kh * kw;
        for (let ky = 0; ky < kh; ky++) {
          const [y0, y1] = validRange(ky, sh, p.padH, H, Ho);
          for (let kx = 0; kx < kw; kx++) {
            const [x0, x1] = validRange(kx, sw, p.padW, W, Wo);
            const wv = w[wBase + ky * kw + kx];
            for (let oy = y0; oy < y1; oy++) {
              const xr = xBase + (oy * sh - p.padH + ky) * W - p.padW + kx;
              const ar = oy * Wo;
              for (let ox = x0; ox < x1; ox++) acc[ar + ox] += wv * x[xr + ox * sw];
            }
          }
        }
      }
      out.set(acc, (n * p.outChannels + o) * Ho * Wo);
    }
  }
}

function directBackwardInput(gOut: Float32Array, w: Float32Array, gx: Float32Array, p: Conv2dParams): void {
  const cg = p.inChannels / p.groups, og = p.outChannels / p.groups;
  const { kernelH: kh, kernelW: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo, strideH: sh, strideW: sw } = p;
  const acc = new Float64Array(H * W);
  for (let n = 0; n < p.batch; n++) {
    for (let c = 0; c < p.inChannels; c++) {
      const g = Math.floor(c / cg), ci = c % cg;
      acc.fill(0);
      for (let oo = 0; oo < og; oo++) {
        const o = g * og + oo;
        const gBase = (n * p.outChannels + o) * Ho * Wo;
        const wBase = (o * cg + ci) * kh * kw;
        for (let ky = 0; ky < kh; ky++) {
          const [y0, y1] = validRange(ky, sh, p.padH, H, Ho);
          for (let kx = 0; kx < kw; kx++) {
            const [x0, x1] = validRange(kx, sw, p.padW, W, Wo);
            const wv = w[wBase + ky * kw + kx];
            for (let oy = y0; oy < y1; oy++) {
              const xr = (oy * sh - p.padH + ky) * W - p.padW + kx;
              const gr = gBase + oy * Wo;
              for (let ox = x0; ox < x1; ox++) acc[xr + ox * sw] += wv * gOut[gr + ox];
            }
          }
        }
      }
      gx.set(acc, (n * p.inChannels + c) * H * W);
    }
  }
}

function directBackwardWeight(gOut: Float32Array, x: Float32Array, gw: Float32Array, p: Conv2dParams): void {
  const cg = p.inChannels / p.groups, og = p.outChannels / p.groups;
  const { kernelH: kh, kernelW: kw, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo, strideH: sh, strideW: sw } = p;
  for (let o = 0; o < p.outChannels; o++) {
    const g = Math.floor(o / og);
    for (let ci = 0; ci < cg; ci++) {
      const wBase = (o * cg + ci) * kh * kw;
      for (let ky = 0; ky < kh; ky++) {
        const [y0, y1] = validRange(ky, sh, p.padH, H, Ho);
        for (let kx = 0; kx < kw; kx++) {
          const [x0, x1] = validRange(kx, sw, p.padW, W, Wo);
          let s = 0;
          for (let n = 0; n < p.batch; n++) {
            const xBase = (n * p.inChannels + g * cg + ci) * H * W;
            const gBase = (n * p.outChannels + o) * Ho * Wo;
            for (let oy = y0; oy < y1; oy++) {
              const xr = xBase + (oy * sh - p.padH + ky) * W - p.padW + kx;
              const gr = gBase + oy * Wo;
              for (let ox = x0; ox < x1; ox++) s += gOut[gr + ox] * x[xr + ox * sw];
            }
          }
          gw[wBase + ky * kw + kx] = s;
        }
      }
    }
  }
}

// --- kernels -----------------------------------------------------------------------------------

function conv2d(xb: CpuBuffer, wb: CpuBuffer, outb: CpuBuffer, p: Conv2dParams): void {
  const x = f32(xb), w = f32(wb), out = f32(outb);
  if (usesDirect(p)) return directForward(x, w, out, p);
  const og = p.outChannels / p.groups;
  const K = (p.inChannels / p.groups) * p.kernelH * p.kernelW;
  const P = p.outHeight * p.outWidth;
  const chunk = chunkSize(p);
  const col = new Float32Array(chunk * P * K);
  const res = new Float32Array(og * chunk * P);
  for (let n0 = 0; n0 < p.batch; n0 += chunk) {
    const count = Math.min(chunk, p.batch - n0);
    for (let g = 0; g < p.groups; g++) {
      im2colRows(x, col, p, n0, count, g);
      // res (Og x count*P) = W_g (Og x K) . col^T
      matmul(wrap(w.subarray(g * og * K, (g + 1) * og * K)), wrap(col.subarray(0, count * P * K)), wrap(res), {
        m: og, n: count * P, k: K, transA: false, transB: true, alpha: 1, beta: 0,
      });
      shuffleGroupRows(out, res, p, n0, count, g, false);
    }
  }
}

function conv2dBackwardInput(gb: CpuBuffer, wb: CpuBuffer, gxb: CpuBuffer, p: Conv2dParams): void {
  const gOut = f32(gb), w = f32(wb), gx = f32(gxb);
  if (usesDirect(p)) return directBackwardInput(gOut, w, gx, p);
  const og = p.outChannels / p.groups;
  const K = (p.inChannels / p.groups) * p.kernelH * p.kernelW;
  const P = p.outHeight * p.outWidth;
  const chunk = chunkSize(p);
  const col = new Float32Array(chunk * P * K);
  const gm = new Float32Array(og * chunk * P);
  gx.fill(0, 0, p.batch * p.inChannels * p.inHeight * p.inWidth);
  for (let n0 = 0; n0 < p.batch; n0 += chunk) {
    const count = Math.min(chunk, p.batch - n0);
    for (let g = 0; g < p.groups; g++) {
      shuffleGroupRows(gOut, gm, p, n0, count, g, true);
      // col (count*P x K) = G^T (count*P x Og) . W_g (Og x K)
      matmul(wrap(gm.subarray(0, og * count * P)), wrap(w.subarray(g * og * K, (g + 1) * og * K)), wrap(col), {
        m: count * P, n: K, k: og, transA: true, transB: false, alpha: 1, beta: 0,
      });
      col2imRows(col, gx, p, n0, count, g);
    }
  }
}

function conv2dBackwardWeight(gb: CpuBuffer, xb: CpuBuffer, gwb: CpuBuffer, p: Conv2dParams): void {
  const gOut = f32(gb), x = f32(xb), gw = f32(gwb);
  if (usesDirect(p)) return directBackwardWeight(gOut, x, gw, p);
  const og = p.outChannels / p.groups;
  const K = (p.inChannels / p.groups) * p.kernelH * p.kernelW;
  const P = p.outHeight * p.outWidth;
  const chunk = chunkSize(p);
  const col = new Float32Array(chunk * P * K);
  const gm = new Float32Array(og * chunk * P);
  for (let n0 = 0; n0 < p.batch; n0 += chunk) {
    const count = Math.min(chunk, p.batch - n0);
    for (let g = 0; g < p.groups; g++) {
      im2colRows(x, col, p, n0, count, g);
      shuffleGroupRows(gOut, gm, p, n0, count, g, true);
      // dW_g (Og x K) (+)= G (Og x count*P) . col (count*P x K)
      matmul(wrap(gm.subarray(0, og * count * P)), wrap(col.subarray(0, count * P * K)), wrap(gw.subarray(g * og * K, (g + 1) * og * K)), {
        m: og, n: K, k: count * P, transA: false, transB: false, alpha: 1, beta: n0 === 0 ? 0 : 1,
      });
    }
  }
}

function batchNorm(
  xb: CpuBuffer, gb: CpuBuffer, bb: CpuBuffer, mb: CpuBuffer, vb: CpuBuffer, outb: CpuBuffer, p: BatchNormParams,
): void {
  const x = f32(xb), gamma = f32(gb), beta = f32(bb), mean = f32(mb), variance = f32(vb), out = f32(outb);
  const { outer, channels: C, inner } = p;
  const count = outer * inner;
  for (let c = 0; c < C; c++) {
    let mu: number, v: number;
    if (p.training) {
      // Two passes: the mean first, then squared deviations (no cancellation of E[x^2] - E[x]^2).
      let s = 0;
      for (let o = 0; o < outer; o++) {
        const base = (o * C + c) * inner;
        for (let i = 0; i < inner; i++) s += x[base + i];
      }
      mu = s / count;
      let q = 0;
      for (let o = 0; o < outer; o++) {
        const base = (o * C + c) * inner;
        for (let i = 0; i < inner; i++) {
          const d = x[base + i] - mu;
          q += d * d;
        }
      }
      v = q / count;
      mean[c] = mu;
      variance[c] = v;
    } else {
      mu = mean[c];
      v = variance[c];
    }
    const scale = gamma[c] / Math.sqrt(v + p.eps);
    const shift = beta[c] - mu * scale;
    for (let o = 0; o < outer; o++) {
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) out[base + i] = x[base + i] * scale + shift;
    }
  }
}

function batchNormBackward(
  gOutb: CpuBuffer, xb: CpuBuffer, gb: CpuBuffer, mb: CpuBuffer, vb: CpuBuffer,
  gxb: CpuBuffer, gGammab: CpuBuffer, gBetab: CpuBuffer, p: BatchNormParams,
): void {
  const g = f32(gOutb), x = f32(xb), gamma = f32(gb), mean = f32(mb), variance = f32(vb);
  const gx = f32(gxb), gGamma = f32(gGammab), gBeta = f32(gBetab);
  const { outer, channels: C, inner } = p;
  const count = outer * inner;
  for (let c = 0; c < C; c++) {
    const mu = mean[c];
    const invStd = 1 / Math.sqrt(variance[c] + p.eps);
    let sg = 0, sgx = 0;
    for (let o = 0; o < outer; o++) {
      const base = (o * C + c) * inner;
      for (let i = 0; i < inner; i++) {
        sg += g[base + i];
        sgx += g[base + i] * (x[base + i] - mu);
      }
    }
    const dGamma = sgx * invStd;
    gBeta[c] = sg;
    gGamma[c] = dGamma;
    const k = gamma[c] * invStd;
    if (p.training) {
      // dx = gamma/sigma * (g - mean(g) - xhat * mean(g * xhat))
      const mg = sg / count, mgx = dGamma / count;
      for (let o = 0; o < outer; o++) {
        const base = (o * C + c) * inner;
        for (let i = 0; i < inner; i++) {
          const xhat = (x[base + i] - mu) * invStd;
          gx[base + i] = k * (g[base + i] - mg - xhat * mgx);
        }
      }
    } else {
      for (let o = 0; o < outer; o++) {
        const base = (o * C + c) * inner;
        for (let i = 0; i < inner; i++) gx[base + i] = k * g[base + i];
      }
    }
  }
}

function dropout(xb: CpuBuffer, outb: CpuBuffer, maskb: CpuBuffer, n: number, p: number, seed: number): void {
  const x = f32(xb), out = f32(outb), mask = f32(maskb);
  const keepScale = p < 1 ? 1 / (1 - p) : 0;
  for (let i = 0; i < n; i++) {
    const m = hashUniform(seed, i) >= p ? keepScale : 0;
    mask[i] = m;
    out[i] = x[i] * m;
  }
}

function globalAvgPool(xb: CpuBuffer, outb: CpuBuffer, p: ChannelLayout): void {
  const x = f32(xb), out = f32(outb);
  const rows = p.outer * p.channels;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * p.inner;
    for (let i = 0; i < p.inner; i++) s += x[base + i];
    out[r] = s / p.inner;
  }
}

function globalAvgPoolBackward(gb: CpuBuffer, gxb: CpuBuffer, p: ChannelLayout): void {
  const g = f32(gb), gx = f32(gxb);
  const rows = p.outer * p.channels;
  for (let r = 0; r < rows; r++) gx.fill(g[r] / p.inner, r * p.inner, (r + 1) * p.inner);
}

export const layerKernels = {
  conv2d,
  conv2dBackwardInput,
  conv2dBackwardWeight,
  batchNorm,
  batchNormBackward,
  dropout,
  globalAvgPool,
  globalAvgPoolBackward,
};
