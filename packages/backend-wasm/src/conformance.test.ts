import { createCpuBackend } from '@fr/backend-cpu';
import { kernelConformanceCases, runKernelCase } from '@fr/core/testing';
import { afterAll, describe, expect, test } from 'vitest';
import { createWasmBackend } from './index.js';

const reference = createCpuBackend();

describe.each([1, 2])('the kernel conformance kit at %i thread(s)', (threads) => {
  test('every case passes against the TypeScript reference', async () => {
    const backend = await createWasmBackend({ threads });
    expect(backend.capabilities.description).toContain(`${threads} thread`);
    const failed: string[] = [];
    for (const c of kernelConformanceCases()) {
      const r = await runKernelCase(c, backend, reference);
      if (!r.passed) failed.push(`${r.name}: ${r.error ?? JSON.stringify(r.worst)}`);
    }
    backend.dispose();
    expect(failed).toEqual([]);
  });
});
afterAll(() => reference.dispose());
