/**
 * Convolutions as GEMMs on the kernel module: per sample and group, im2col into a K x P patch
 * matrix, then the threaded SIMD GEMM. 1x1 stride-1 unpadded kernels need no patches (the input is
 * the patch matrix), so all samples of a group are one batched GEMM: one task, the weights packed
 * once. Groups of one or two channels (depthwise) would make GEMMs of one or two rows; they run
 * direct SIMD loops (assembly/direct.ts) split over channels.
 */
import type { Conv2dParams, KernelTable } from '@fr/core';
import { gemm, type GemmBatch } from './matmul.js';
import { requireFloat32, runParts, splitRange, type Runtime, type WasmBuffer } from './runtime.js';

/** The reference's rule for its direct route; the same split keeps the two backends comparable. */
function usesDirect(p: Conv2dParams): boolean {
  return (p.inChannels / p.groups) * (p.outChannels / p.groups) <= 4;
}

function isPointwise(p: Conv2dParams): boolean {
  return p.kernelH === 1 && p.kernelW === 1 && p.strideH === 1 && p.strideW === 1 && p.padH === 0 && p.padW === 0;
}

interface Shape {
  cg: number;
  og: number;
  K: number;
  P: number;
  /** Floats per sample of x, of the output. */
  xs: number;
  os: number;
}

function shape(p: Conv2dParams): Shape {
  const cg = p.inChannels / p.groups, og = p.outChannels / p.groups;
  return { cg, og, K: cg * p.kernelH * p.kernelW, P: p.outHeight * p.outWidth, xs: p.inChannels * p.inHeight * p.inWidth, os: p.outChannels * p.outHeight * p.outWidth };
}

type PatchOp = 'im2col' | 'col2im';

/** im2col of one sample and group, or col2im into its (overwritten) planes; split over channels. */
function patches(rt: Runtime, op: PatchOp, from: number, to: number, cg: number, p: Conv2dParams): void {
  const args = [from, to, p.inHeight, p.inWidth, p.kernelH, p.kernelW, p.strideH, p.strideW, p.padH, p.padW, p.outHeight, p.outWidth];
  const threads = cg * p.kernelH * p.kernelW * p.outHeight * p.outWidth >= 1 << 16 ? rt.threads : 1;
  runParts(rt, op, splitRange(cg, threads, 1).map(([c0, c1]) => [...args, c0, c1]));
}

/** Byte offsets of group g: its planes in sample 0 of x (or gx) and of the output (or gOut), its weights. */
interface GroupOffsets {
  g: number;
  x: number;
  out: number;
  w: number;
}

/** `body` per group, with that group's offsets. */
function eachGroup(p: Conv2dParams, s: Shape, body: (at: GroupOffsets) => void): void {
  for (let g = 0; g < p.groups; g++) body({ g, x: g * s.cg * p.inHeight * p.inWidth * 4, out: g * s.og * s.P * 4, w: g * s.og * s.K * 4 });
}

/**
 * The im2col route's frame: a K x P patch block, then `body` for each sample n and group with the
 * byte addresses of that sample's group planes in x (or gx) and in the output (or gOut).
 */
function perGroup(rt: Runtime, p: Conv2dParams, s: Shape, x: number, out: number, body: (col: number, n: number, xg: number, outg: number, wg: number) => void): void {
  const block = rt.heap.alloc(s.K * s.P * 4, 'conv2d patches');
  try {
    for (let n = 0; n < p.batch; n++) {
      eachGroup(p, s, (at) => body(block.ptr, n, x + n * s.xs * 4 + at.x, out + n * s.os * 4 + at.out, at.w));
    }
  } finally {
    rt.heap.release(block.ptr, block.size);
  }
}

/** The batch's samples as one GEMM batch; strides in floats per sample (0: shared). */
function samples(p: Conv2dParams, a: number, b: number, c: number, sum: boolean): GemmBatch {
  return { count: p.batch, strideA: a * 4, strideB: b * 4, strideC: c * 4, sum };
}

/** The direct route: `kernel` over channels [c0, c1) of `channels`, split among the threads. */
function direct(rt: Runtime, kernel: string, a: WasmBuffer, b: WasmBuffer, c: WasmBuffer, p: Conv2dParams, channels: number): void {
  const args = [a.ptr, b.ptr, c.ptr, p.batch, p.inChannels, p.inHeight, p.inWidth, p.outChannels, p.kernelH, p.kernelW, p.strideH, p.strideW, p.padH, p.padW, p.outHeight, p.outWidth, p.groups];
  const work = p.batch * p.outChannels * p.outHeight * p.outWidth * p.kernelH * p.kernelW;
  runParts(rt, kernel, splitRange(channels, work >= 1 << 16 ? rt.threads : 1, 1).map(([c0, c1]) => [...args, c0, c1]));
}

export function convKernels(rt: Runtime): Pick<KernelTable<WasmBuffer>, 'conv2d' | 'conv2dBackwardInput' | 'conv2dBackwardWeight'> {
  const directRoute = (name: 'conv2d' | 'conv2dBackwardInput' | 'conv2dBackwardWeight', a: WasmBuffer, b: WasmBuffer, c: WasmBuffer, p: Conv2dParams) => {
    if (name === 'conv2d') direct(rt, 'directForward', a, b, c, p, p.outChannels);
    else if (name === 'conv2dBackwardInput') direct(rt, 'directBackwardInput', a, b, c, p, p.inChannels);
    else direct(rt, 'directBackwardWeight', a, b, c, p, p.outChannels);
  };
  const check = (name: string, ...buffers: WasmBuffer[]) => buffers.forEach((b) => requireFloat32(b, name));
  return {
    conv2d(x, w, out, p) {
      check('conv2d', x, w, out);
      if (usesDirect(p)) return directRoute('conv2d', x, w, out, p);
      const s = shape(p);
      if (isPointwise(p)) {
        // out[n, g] (og x P) = W_g (og x K) . x[n, g] (K x P), every sample in one task.
        return eachGroup(p, s, (at) => gemm(rt, w.ptr + at.w, x.ptr + at.x, out.ptr + at.out, s.og, s.P, s.K, s.P, false, false, 1, 0, samples(p, 0, s.xs, s.os, false)));
      }
      perGroup(rt, p, s, x.ptr, out.ptr, (col, _n, xg, outg, wg) => {
        patches(rt, 'im2col', xg, col, s.cg, p);
        // out[n, g] (og x P) = W_g (og x K) . col (K x P)
        gemm(rt, w.ptr + wg, col, outg, s.og, s.P, s.K, s.P, false, false, 1, 0);
      });
    },
    conv2dBackwardInput(gOut, w, gx, p) {
      check('conv2dBackwardInput', gOut, w, gx);
      if (usesDirect(p)) return directRoute('conv2dBackwardInput', gOut, w, gx, p);
      const s = shape(p);
      if (isPointwise(p)) {
        // gx[n, g] (K x P) = W_g^T (K x og) . gOut[n, g] (og x P), every sample in one task.
        return eachGroup(p, s, (at) => gemm(rt, w.ptr + at.w, gOut.ptr + at.out, gx.ptr + at.x, s.K, s.P, s.og, s.P, true, false, 1, 0, samples(p, 0, s.os, s.xs, false)));
      }
      perGroup(rt, p, s, gx.ptr, gOut.ptr, (col, _n, gxg, gOutg, wg) => {
        // col (K x P) = W_g^T (K x og) . gOut[n, g] (og x P), folded into gx's planes by col2im.
        gemm(rt, w.ptr + wg, gOutg, col, s.K, s.P, s.og, s.P, true, false, 1, 0);
        patches(rt, 'col2im', col, gxg, s.cg, p);
      });
    },
    conv2dBackwardWeight(gOut, x, gw, p) {
      check('conv2dBackwardWeight', gOut, x, gw);
      if (usesDirect(p)) return directRoute('conv2dBackwardWeight', gOut, x, gw, p);
      const s = shape(p);
      if (isPointwise(p)) {
        // dW_g = sum over samples, in order, of gOut[n, g] . x[n, g]^T.
        return eachGroup(p, s, (at) => gemm(rt, gOut.ptr + at.out, x.ptr + at.x, gw.ptr + at.w, s.og, s.K, s.P, s.K, false, true, 1, 0, samples(p, s.os, s.xs, 0, true)));
      }
      perGroup(rt, p, s, x.ptr, gOut.ptr, (col, n, xg, gOutg, wg) => {
        patches(rt, 'im2col', xg, col, s.cg, p);
        // dW_g (og x K) (+)= gOut[n, g] (og x P) . col^T (P x K), samples in order.
        gemm(rt, gOutg, col, gw.ptr + wg, s.og, s.K, s.P, s.K, false, true, 1, n === 0 ? 0 : 1);
      });
    },
  };
}
