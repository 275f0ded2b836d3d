/** Layer kernels (convolution, normalisation, dropout, pooling) of the CPU backend. */
import type { BatchNormParams, ChannelLayout, Conv2dParams } from '@fr/core';
import type { CpuBuffer } from './buffer.js';

const missing = (name: string) => (): never => {
  throw new Error(`cpu backend: ${name} is not implemented yet`);
};

export const layerKernels = {
  conv2d: missing('conv2d') as (x: CpuBuffer, w: CpuBuffer, out: CpuBuffer, p: Conv2dParams) => void,
  conv2dBackwardInput: missing('conv2dBackwardInput') as (g: CpuBuffer, w: CpuBuffer, gx: CpuBuffer, p: Conv2dParams) => void,
  conv2dBackwardWeight: missing('conv2dBackwardWeight') as (g: CpuBuffer, x: CpuBuffer, gw: CpuBuffer, p: Conv2dParams) => void,
  batchNorm: missing('batchNorm') as (
    x: CpuBuffer, gamma: CpuBuffer, beta: CpuBuffer, mean: CpuBuffer, variance: CpuBuffer, out: CpuBuffer, p: BatchNormParams,
  ) => void,
  batchNormBackward: missing('batchNormBackward') as (
    g: CpuBuffer, x: CpuBuffer, gamma: CpuBuffer, mean: CpuBuffer, variance: CpuBuffer,
    gx: CpuBuffer, gGamma: CpuBuffer, gBeta: CpuBuffer, p: BatchNormParams,
  ) => void,
  dropout: missing('dropout') as (x: CpuBuffer, out: CpuBuffer, mask: CpuBuffer, n: number, p: number, seed: number) => void,
  globalAvgPool: missing('globalAvgPool') as (x: CpuBuffer, out: CpuBuffer, p: ChannelLayout) => void,
  globalAvgPoolBackward: missing('globalAvgPoolBackward') as (g: CpuBuffer, gx: CpuBuffer, p: ChannelLayout) => void,
};
