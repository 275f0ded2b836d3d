import { createCpuBackend } from '@fr/backend-cpu';
import { runKernelConformance } from '@fr/core/testing';
import { describe, expect, it } from 'vitest';
import { gpu } from './helpers.js';

describe('the shared kernel conformance kit (@fr/core/testing)', () => {
  it('passes every case against the CPU backend', async () => {
    const results = await runKernelConformance(await gpu(), createCpuBackend());
    expect(results.length).toBeGreaterThan(30);
    const failed = results.filter((r) => !r.passed);
    expect(failed.map((r) => `${r.name}: ${r.error ?? `${r.worst.output} err ${r.worst.maxError} > ${r.worst.allowed}`}`)).toEqual([]);
    const kernels = new Set(results.map((r) => r.kernel));
    for (const k of ['matmul', 'marginLoss', 'conv2d', 'batchNormBackward', 'dropout', 'globalAvgPool']) expect(kernels.has(k)).toBe(true);
  });

  it('passes the matmul, convolution, row-normalisation and margin-loss cases with the hardware defaults (tiled matmul, workgroup rows)', async () => {
    const kernels = ['matmul', 'conv2d', 'conv2dBackwardInput', 'conv2dBackwardWeight', 'l2normalizeRows', 'l2normalizeRowsBackward', 'marginLoss'] as const;
    const results = await runKernelConformance(await gpu('tiled'), createCpuBackend(), { kernels });
    expect(results.length).toBeGreaterThan(30);
    expect(results.filter((r) => !r.passed).map((r) => `${r.name}: ${r.error ?? r.worst.maxError}`)).toEqual([]);
  });
});
