import { describe, expect, test } from 'vitest';
import type { Backend, KernelTable } from '@fr/core';
import { kernelConformanceCases, runKernelCase } from '@fr/core/testing';
import { createCpuBackend, type CpuBuffer } from './index.js';

const reference = createCpuBackend();

/** A CPU backend whose matmul is off by one part in a thousand: the kit must catch it. */
function brokenBackend(): Backend<CpuBuffer> {
  const good = createCpuBackend();
  const kernels: KernelTable<CpuBuffer> = {
    ...good.kernels,
    matmul(a, b, out, p) {
      good.kernels.matmul(a, b, out, p);
      const o = out.data as Float32Array;
      for (let i = 0; i < p.m * p.n; i++) o[i] *= 1.001;
    },
  };
  return { ...good, kernels };
}

describe('the conformance kit', () => {
  const cases = kernelConformanceCases();
  test('covers every kernel of the table', () => {
    const covered = new Set(cases.map((c) => c.kernel));
    expect([...covered].sort()).toEqual(Object.keys(reference.kernels).sort());
  });
  test('passes the reference against itself', async () => {
    const failed = [];
    for (const c of cases) {
      const r = await runKernelCase(c, createCpuBackend(), reference);
      if (!r.passed) failed.push(`${r.name}: ${r.error ?? JSON.stringify(r.worst)}`);
    }
    expect(failed).toEqual([]);
  });
  test('fails a backend with a wrong matmul, and only on matmul', async () => {
    const broken = brokenBackend();
    const failedKernels = new Set<string>();
    for (const c of cases) {
      const r = await runKernelCase(c, broken, reference);
      if (!r.passed) failedKernels.add(r.kernel);
    }
    expect([...failedKernels]).toEqual(['matmul']);
  });
});
