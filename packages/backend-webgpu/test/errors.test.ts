import { BackendError, defineTransform } from '@fr/core';
import { describe, expect, it, vi } from 'vitest';
import { createNodeWebGpuBackend } from '../src/node.js';
import { gpu } from './helpers.js';

describe('float16 buffers', () => {
  it('pack two values per word, read back as float32, fill and copy in pairs, and refuse a write that splits a pair', async () => {
    const backend = await gpu();
    const before = backend.stats().bytesLive;
    const h = backend.alloc(5, 'float16', { label: 'h' });
    expect(backend.stats().bytesLive - before).toBe(12);
    backend.write(h, Float32Array.of(0.1, 70000, -1.5, 2 ** -24, 3));
    expect(Array.from(await backend.read(h, 'float16', 5))).toEqual([0.0999755859375, Infinity, -1.5, 2 ** -24, 3]);
    backend.kernels.fill(h, 3, 0.5);
    expect(Array.from(await backend.read(h, 'float16', 5))).toEqual([0.5, 0.5, 0.5, 2 ** -24, 3]);
    const g = backend.alloc(4, 'float16', { label: 'g' });
    backend.kernels.copy(h, g, 2, 2, 0);
    expect(Array.from(await backend.read(g, 'float16', 2))).toEqual([0.5, 2 ** -24]);
    expect(() => backend.write(h, Float32Array.of(1), 1)).toThrow(/float16 h is written in pairs of values; a write of 1 at 1 splits a pair/);
    expect(() => backend.kernels.copy(h, g, 1, 0, 0)).toThrow(/float16 copies move pairs of values/);
    const f = backend.alloc(4, 'float32', { label: 'f' });
    expect(() => backend.kernels.copy(h, f, 2, 0, 0)).toThrow(/copy from float16 to float32/);
    expect(() => backend.kernels.matmul(f, f, f, { m: 2, n: 2, k: 2, transA: false, transB: false, alpha: 1, beta: 0, halfB: true })).toThrow(/halfB true got a float32 B/);
    for (const b of [h, g, f]) backend.free(b);
  });
});

describe('errors', () => {
  it('an allocation over the device limits names the tensor and the limit', async () => {
    const backend = await gpu();
    const limit = backend.capabilities.maxStorageBufferBindingSize;
    expect(() => backend.alloc(limit / 4 + 1, 'float32', { label: 'arcface.weight' })).toThrow(BackendError);
    expect(() => backend.alloc(limit / 4 + 1, 'float32', { label: 'arcface.weight' })).toThrow(
      new RegExp(`arcface\\.weight.*(maxStorageBufferBindingSize|maxBufferSize) of ${limit}`),
    );
    const capped = await createNodeWebGpuBackend({ maxBufferSize: 1 << 20, destroyDeviceOnDispose: true });
    expect(() => capped.alloc(300_000, 'float32', { label: 'fc.weight' })).toThrow(/fc\.weight needs 1200000 bytes, over the device's maxBufferSize of 1048576/);
    capped.dispose();
  });

  it('a WGSL compile error rejects with the shader key and the compiler message; the backend stays usable', async () => {
    const backend = await gpu();
    const broken = defineTransform({
      key: 'broken-transform',
      uniforms: { s: 2 },
      target: (z) => z, targetGrad: () => 1, other: (z) => z, otherGrad: () => 1,
      wgsl: 'fn fr_target(z: f32, row: FrRow) -> f32 { return z * u.not_a_uniform; }\nfn fr_other(z: f32, row: FrRow) -> f32 { return z; }',
    });
    const b = (n: number, dtype: 'float32' | 'int32' = 'float32') => backend.alloc(n, dtype);
    const [z, labels, grad, rl, rg] = [b(6), b(2, 'int32'), b(6), b(2), b(2)];
    backend.write(labels, Int32Array.of(0, 1));
    backend.kernels.marginLoss({
      logits: z, labels, grad, rowLoss: rl, rowLogitGrad: rg, rowContext: null, bias: null, rows: 2, cols: 3, classOffset: 0,
      transform: broken, reducer: 'softmax-ce', positiveWeight: 1, negativeWeight: 1, scale: 1,
    });
    const err = await backend.sync().then(() => null, (e: unknown) => e as Error);
    expect(err).toBeInstanceOf(BackendError);
    expect(err!.message).toContain('marginLoss:softmax-ce:broken-transform(s)');
    expect(err!.message).toMatch(/not_a_uniform|fr_target_grad/);
    backend.kernels.fill(z, 6, 7);
    expect(Array.from(await backend.read(z, 'float32', 6))).toEqual([7, 7, 7, 7, 7, 7]);
    for (const x of [z, labels, grad, rl, rg]) backend.free(x);
  });

  it('FR_DEBUG=wgsl prints each shader with its key once, when it is compiled', async () => {
    const prev = process.env.FR_DEBUG;
    process.env.FR_DEBUG = 'wgsl';
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const backend = await createNodeWebGpuBackend();
      const x = backend.alloc(4, 'float32');
      backend.kernels.fill(x, 4, 1);
      backend.kernels.fill(x, 4, 2);
      await backend.sync();
      const printed = log.mock.calls.map((c) => String(c[0]));
      expect(printed.filter((s) => s.includes('shader fill:wg256'))).toHaveLength(1);
      expect(printed.join('\n')).toContain('o[gid] = p.value;');
      backend.dispose();
    } finally {
      log.mockRestore();
      if (prev === undefined) delete process.env.FR_DEBUG;
      else process.env.FR_DEBUG = prev;
    }
  });

  it('a lost device rejects pending reads and makes later calls throw, instead of hanging', async () => {
    const backend = await createNodeWebGpuBackend();
    const x = backend.alloc(1 << 16, 'float32', { label: 'x' });
    backend.kernels.fill(x, 1 << 16, 3);
    const pending = backend.read(x, 'float32', 1 << 16);
    backend.device.destroy();
    const outcome = await Promise.race([
      pending.then(() => 'resolved', (e: unknown) => e),
      new Promise((r) => setTimeout(() => r('hung'), 10_000)),
    ]);
    // The read either completed before the loss or was rejected with a BackendError, never hung.
    if (outcome !== 'resolved') {
      expect(outcome).toBeInstanceOf(BackendError);
      expect(String((outcome as Error).message)).toMatch(/device was lost|failed/);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(() => backend.kernels.fill(x, 4, 1)).toThrow(/device was lost \(destroyed/);
    expect(() => backend.alloc(4, 'float32')).toThrow(BackendError);
    await expect(backend.sync()).rejects.toThrow(/device was lost/);
    await expect(backend.read(x, 'float32', 4)).rejects.toThrow(BackendError);
  });

  it('stats count dispatches, bytes moved and live buffers', async () => {
    const backend = await createNodeWebGpuBackend();
    const s0 = backend.stats();
    const x = backend.alloc(100, 'float32');
    backend.write(x, new Float32Array(100).fill(2));
    backend.kernels.affine(x, x, 100, 3, 1);
    const data = await backend.read(x, 'float32', 100);
    expect(data[99]).toBe(7);
    const s1 = backend.stats();
    expect(s1.dispatches - s0.dispatches).toBe(1);
    expect(s1.bytesWritten - s0.bytesWritten).toBe(400);
    expect(s1.bytesRead - s0.bytesRead).toBe(400);
    expect(s1.buffersLive - s0.buffersLive).toBe(1);
    expect(s1.bytesLive - s0.bytesLive).toBe(400);
    backend.free(x);
    expect(backend.stats().buffersLive).toBe(s0.buffersLive);
    // The freed buffer is pooled and serves the next allocation of its size class.
    const y = backend.alloc(90, 'float32');
    expect(backend.stats().bytesPooled).toBe(s1.bytesPooled);
    backend.free(y);
    expect(backend.capabilities.hardware).toBe(!/swiftshader/i.test(backend.capabilities.description));
    backend.dispose();
    expect(() => backend.alloc(1, 'float32')).toThrow(/after dispose/);
  });
});
