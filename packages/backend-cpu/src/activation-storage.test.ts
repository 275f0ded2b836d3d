import { describe, expect, test } from 'vitest';
import { backward, full, mul, packingScope, roundToFloat16, sequential, sum, tensor, tidy, type Layer, type Tensor } from '@fr/core';
import { ACTIVATION_STORAGE_PACKED_ELEMENTS, compareTolerance, runActivationStorageCheck } from '@fr/core/testing';
import { createCpuBackend } from './index.js';

describe('float16 activation storage', () => {
  test('the same forward, 2 bytes less per packed element, float16-close gradients, nothing left behind', async () => {
    const { float32, float16 } = await runActivationStorageCheck(createCpuBackend());
    expect(float16.output).toEqual(float32.output);
    expect(float32.forwardBytes - float16.forwardBytes).toBe(2 * ACTIVATION_STORAGE_PACKED_ELEMENTS);
    expect(float16.forwardBytes / float32.forwardBytes).toBeLessThan(0.55);
    // Float16-close (relative to the largest gradient), and not equal: the backward read rounded values.
    const close = compareTolerance(float16.grads, float32.grads, { rtol: 5e-3, atol: 0 });
    expect(close.pass, `max error ${close.maxError} over ${close.limit}`).toBe(true);
    expect(close.maxError).toBeGreaterThan(0);
    expect(float32.leakedBuffers).toBe(0);
    expect(float16.leakedBuffers).toBe(0);
  });

  test('a packed tensor reads back rounded to float16, expands for a read and drops that copy again; dispose frees both', async () => {
    const backend = createCpuBackend();
    const t = tensor(backend, [0.1, 1 / 3, 70000, -2], [4]);
    expect(backend.stats().bytesLive).toBe(16);
    expect(t.packFloat16()).toBe(true);
    expect(t.isPacked).toBe(true);
    expect(backend.stats().bytesLive).toBe(8);
    expect(t.packFloat16()).toBe(false);
    expect(Array.from(await t.data())).toEqual([0.0999755859375, 0.333251953125, Infinity, -2]);
    expect(backend.stats().bytesLive).toBe(24);
    t.repack();
    expect(backend.stats().bytesLive).toBe(8);
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(backend.stats().bytesLive).toBe(0);
    const ints = tensor(backend, Int32Array.of(1, 2), [2]);
    expect(ints.packFloat16()).toBe(false);
  });

  test('packingScope packs what its function made of rank 2 or more, except the result; backward reads the packed values', async () => {
    const backend = createCpuBackend();
    const w = tensor(backend, [1.1, 2.2, 3.3], [1, 3], { requiresGrad: true });
    tidy(() => {
      const x = tensor(backend, [0.1, 0.2, 0.3], [1, 3]);
      let inner = x;
      let small = x;
      const y = packingScope(() => {
        inner = tensor(backend, [1 / 3, 1 / 7, 1 / 9], [1, 3]);
        small = tensor(backend, [1 / 3], [1]);
        return mul(w, inner);
      });
      expect(inner.isPacked).toBe(true);
      expect(small.isPacked).toBe(false); // rank 1: statistics stay float32
      expect(y.isPacked).toBe(false);
      expect(x.isPacked).toBe(false);
      backward(sum(y));
      return [];
    });
    // d sum(w * inner) / dw = inner, read back from float16.
    const want = [1 / 3, 1 / 7, 1 / 9].map((v) => roundToFloat16(Math.fround(v)));
    expect(Array.from(await w.grad!.data())).toEqual(want);
    expect(want[0]).not.toBe(Math.fround(1 / 3));
  });
});

describe('sequential under float16 activation storage', () => {
  test('packs the outputs it made once the next layer has read them, never a tensor a layer handed on from elsewhere', async () => {
    const backend = createCpuBackend();
    const cached = tensor(backend, [0.1, 0.2, 0.3], [1, 3], { name: 'cached', requiresGrad: true });
    const w = tensor(backend, [1, 2, 3], [1, 3], { requiresGrad: true });
    const made: Tensor[] = [];
    const scaleBy = (k: number): Layer => ({ forward: (x) => { const y = mul(x, full(backend, [1, 3], k)); made.push(y); return y; } });
    const handOn: Layer = { forward: () => cached };
    const net = sequential(scaleBy(2), handOn, scaleBy(3), scaleBy(5));
    tidy(() => {
      const y = net.forward(mul(w, full(backend, [1, 3], 1)), { training: true, activationStorage: 'float16' });
      // The first output was read by the next layer: packed. The handed-on tensor is not this chain's.
      expect(made[0].isPacked).toBe(true);
      expect(cached.isPacked).toBe(false);
      expect(made[1].isPacked).toBe(true);
      expect(made[2]).toBe(y);
      expect(y.isPacked).toBe(false);
      backward(sum(y));
      return [];
    });
    expect(Array.from(await cached.data())).toEqual([0.1, 0.2, 0.3].map(Math.fround));
    expect(Array.from(await cached.grad!.data())).toEqual([15, 15, 15]);
  });
});
