import { createCpuBackend } from '@fr/backend-cpu';
import { ACTIVATION_STORAGE_PACKED_ELEMENTS, compareTolerance, runActivationStorageCheck } from '@fr/core/testing';
import { describe, expect, it } from 'vitest';
import { gpu } from './helpers.js';

describe('float16 activation storage on WebGPU', () => {
  it('packs as the CPU does: the same forward, the bytes counted, gradients of the CPU run, nothing left behind', async () => {
    const { float32, float16 } = await runActivationStorageCheck(await gpu());
    const cpu = await runActivationStorageCheck(createCpuBackend());
    expect(float16.output).toEqual(float32.output);
    expect(float32.forwardBytes - float16.forwardBytes).toBe(2 * ACTIVATION_STORAGE_PACKED_ELEMENTS);
    const vsFloat32 = compareTolerance(float16.grads, float32.grads, { rtol: 5e-3, atol: 0 });
    expect(vsFloat32.pass, `against float32 storage: ${vsFloat32.maxError} over ${vsFloat32.limit}`).toBe(true);
    expect(vsFloat32.maxError).toBeGreaterThan(0);
    // The CPU's float16 run: both round the same float32 values (to float32 noise) to float16.
    const vsCpu = compareTolerance(float16.grads, cpu.float16.grads, { rtol: 2e-3, atol: 0 });
    expect(vsCpu.pass, `against the CPU: ${vsCpu.maxError} over ${vsCpu.limit}`).toBe(true);
    expect(float32.leakedBuffers).toBe(0);
    expect(float16.leakedBuffers).toBe(0);
  });
});
