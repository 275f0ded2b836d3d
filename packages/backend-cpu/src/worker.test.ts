import { describe, expect, test } from 'vitest';
import { BackendError, scaledTransform } from '@fr/core';
import { runKernelConformance } from '@fr/core/testing';
import { createCpuBackend, createWorkerCpuBackend } from './node.js';

describe('the CPU backend on a worker thread', () => {
  test('every kernel of the conformance kit gives the in-thread backend\'s outputs exactly', async () => {
    const worker = createWorkerCpuBackend();
    const results = await runKernelConformance(worker, createCpuBackend());
    expect(results.length).toBeGreaterThan(100);
    expect(results.filter((r) => !r.passed || r.worst.maxError !== 0).map((r) => `${r.name}: ${r.error ?? r.worst.maxError}`)).toEqual([]);
    expect(new Set(results.map((r) => r.kernel)).has('marginLoss')).toBe(true);
    expect(worker.capabilities.description).toContain('worker thread');
    worker.dispose();
  });

  test('kernels run in order with writes and reads; marginLoss on the calling thread sees what the worker wrote', async () => {
    const b = createWorkerCpuBackend();
    const x = b.alloc(4, 'float32', { label: 'x' });
    const y = b.alloc(4, 'float32', { label: 'y' });
    b.write(x, Float32Array.of(1, 2, 3, 4));
    b.kernels.affine(x, y, 4, 2, 1);
    b.write(x, Float32Array.of(0, 0, 0, 0)); // after the kernel read it
    expect(Array.from(await b.read(y, 'float32', 4))).toEqual([3, 5, 7, 9]);
    expect(Array.from(await b.read(x, 'float32', 4))).toEqual([0, 0, 0, 0]);
    // Logits computed by the worker, then the loss on this thread.
    const z = b.alloc(3, 'float32');
    const labels = b.alloc(1, 'int32');
    b.write(labels, Int32Array.of(1));
    b.kernels.affine(y, z, 3, 0.1, 0); // 0.3, 0.5, 0.7
    const [grad, rowLoss, rowLogitGrad] = [b.alloc(3, 'float32'), b.alloc(1, 'float32'), b.alloc(1, 'float32')];
    b.kernels.marginLoss({
      logits: z, labels, grad, rowLoss, rowLogitGrad, rowContext: null, bias: null, rows: 1, cols: 3, classOffset: 0,
      transform: scaledTransform(1), reducer: 'softmax-ce', positiveWeight: 1, negativeWeight: 1, scale: 1,
    });
    const l = [0.3, 0.5, 0.7].map((v) => Math.fround(v));
    const lse = Math.log(l.reduce((s, v) => s + Math.exp(v), 0));
    expect((await b.read(rowLoss, 'float32', 1))[0]).toBeCloseTo(lse - l[1], 6);
    expect(b.stats().buffersLive).toBe(7);
    b.free(x);
    expect(b.stats().buffersLive).toBe(6);
    // float16 buffers round on write and read back as float32.
    const h = b.alloc(2, 'float16');
    b.write(h, Float32Array.of(0.1, 70000));
    expect(Array.from(await b.read(h, 'float16', 2))).toEqual([0.0999755859375, Infinity]);
    b.dispose();
    expect(() => b.kernels.fill(y, 1, 0)).toThrow(/fill after dispose/);
  });

  test('a failing kernel is reported by the next read, sync or calling-thread kernel, naming the kernel', async () => {
    const b = createWorkerCpuBackend();
    const h = b.alloc(2, 'float16', { label: 'half' });
    const f = b.alloc(2, 'float32');
    b.kernels.unary('exp', h, f, 2); // float32 only: fails in the worker
    await expect(b.sync()).rejects.toThrow(BackendError);
    await expect(b.read(f, 'float32', 2)).rejects.toThrow(/worker cpu backend: kernel unary: cpu backend: half holds float16/);
    b.dispose();

    // A kernel on the calling thread waits for the worker, and so meets the failure at once.
    const c = createWorkerCpuBackend();
    const bad = c.alloc(2, 'float16', { label: 'half' });
    c.kernels.unary('exp', bad, c.alloc(2, 'float32'), 2);
    const labels = c.alloc(1, 'int32');
    const out = () => c.alloc(1, 'float32');
    expect(() => c.kernels.marginLoss({
      logits: c.alloc(2, 'float32'), labels, grad: c.alloc(2, 'float32'), rowLoss: out(), rowLogitGrad: out(), rowContext: null, bias: null,
      rows: 1, cols: 2, classOffset: 0, transform: scaledTransform(1), reducer: 'softmax-ce', positiveWeight: 1, negativeWeight: 1, scale: 1,
    })).toThrow(/worker cpu backend: kernel unary: cpu backend: half holds float16/);
    c.dispose();
  });
});
