/**
 * Per-channel layer kernels on the kernel module (assembly/channels.ts): PReLU and batch norm,
 * forward and backward, split over channels among the threads.
 */
import type { ChannelLayout, KernelTable } from '@fr/core';
import { requireFloat32, runParts, splitRange, type Runtime, type WasmBuffer } from './runtime.js';

/** Below this many elements a per-channel kernel runs on one thread. */
const THREAD_ELEMENTS = 1 << 15;

function channelParts(rt: Runtime, p: ChannelLayout, args: number[]): number[][] {
  const threads = p.outer * p.channels * p.inner >= THREAD_ELEMENTS ? rt.threads : 1;
  return splitRange(p.channels, threads, 1).map(([c0, c1]) => [...args, c0, c1]);
}

type LayerKernels = Pick<KernelTable<WasmBuffer>, 'prelu' | 'preluBackward' | 'batchNorm' | 'batchNormBackward'>;

export function layerKernels(rt: Runtime): LayerKernels {
  const check = (name: string, buffers: WasmBuffer[]) => buffers.forEach((b) => requireFloat32(b, name));
  return {
    prelu(x, slope, out, p) {
      check('prelu', [x, slope, out]);
      runParts(rt, 'preluForward', channelParts(rt, p, [x.ptr, slope.ptr, out.ptr, p.outer, p.channels, p.inner]));
    },
    preluBackward(g, x, slope, gx, gSlope, p) {
      check('preluBackward', [g, x, slope, gx, gSlope]);
      runParts(rt, 'preluBackward', channelParts(rt, p, [g.ptr, x.ptr, slope.ptr, gx.ptr, gSlope.ptr, p.outer, p.channels, p.inner]));
    },
    batchNorm(x, gamma, beta, mean, variance, out, p) {
      check('batchNorm', [x, gamma, beta, mean, variance, out]);
      const args = [x.ptr, gamma.ptr, beta.ptr, mean.ptr, variance.ptr, out.ptr, p.outer, p.channels, p.inner, p.eps, p.training ? 1 : 0];
      runParts(rt, 'batchNormForward', channelParts(rt, p, args));
    },
    batchNormBackward(g, x, gamma, mean, variance, gx, gGamma, gBeta, p) {
      check('batchNormBackward', [g, x, gamma, mean, variance, gx, gGamma, gBeta]);
      const args = [g.ptr, x.ptr, gamma.ptr, mean.ptr, variance.ptr, gx.ptr, gGamma.ptr, gBeta.ptr, p.outer, p.channels, p.inner, p.eps, p.training ? 1 : 0];
      runParts(rt, 'batchNormBackward', channelParts(rt, p, args));
    },
  };
}
