import { describe, expect, it, vi } from 'vitest';
import { createNodeWebGpuBackend } from '../src/node.js';
import { gpu, parity, randomF32 } from './helpers.js';

function matmulCase(m: number, n: number, k: number, transA: boolean, transB: boolean, alpha = 1, beta = 0, seed = 1) {
  return {
    buffers: { a: randomF32(seed, m * k), b: randomF32(seed + 1, k * n), o: randomF32(seed + 2, m * n) },
    compare: ['o'],
    call: <B>(kt: import('@fr/core').KernelTable<B>, bf: Record<string, B>) =>
      kt.matmul(bf.a, bf.b, bf.o, { m, n, k, transA, transB, alpha, beta }),
  };
}

const tol = (k: number) => ({ atol: 2e-6 * Math.sqrt(k) + 1e-6, rtol: 1e-5 });

for (const form of ['tiled', 'direct'] as const) {
  describe(`matmul (${form}) matches the CPU backend`, () => {
    const subject = () => gpu(form);
    const dims = [1, 7, 65, 130];
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`trans ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} over m, n, k in {1, 7, 65, 130}`, async () => {
          for (const m of dims) for (const n of dims) for (const k of [1, 65, 130]) {
            await parity(matmulCase(m, n, k, transA, transB), tol(k), `${m}x${n}x${k}`, subject());
          }
          // k = 7 and 17: tails of the 16-deep tile.
          await parity(matmulCase(7, 130, 7, transA, transB), tol(7), '7x130x7', subject());
          await parity(matmulCase(65, 7, 17, transA, transB), tol(17), '65x7x17', subject());
        });
      }
    }

    it('alpha and beta, and beta 0 ignores NaN in the output', async () => {
      await parity(matmulCase(33, 70, 20, false, true, 0.5, -2), tol(20), 'alpha/beta', subject());
      const backend = await subject();
      const m = 3, n = 5, k = 4;
      const a = backend.alloc(m * k, 'float32'), b = backend.alloc(k * n, 'float32'), o = backend.alloc(m * n, 'float32');
      backend.write(a, new Float32Array(m * k).fill(1));
      backend.write(b, new Float32Array(k * n).fill(2));
      backend.write(o, new Float32Array(m * n).fill(NaN));
      backend.kernels.matmul(a, b, o, { m, n, k, transA: false, transB: false, alpha: 1, beta: 0 });
      expect(Array.from(await backend.read(o, 'float32', m * n))).toEqual(new Array(m * n).fill(8));
      for (const x of [a, b, o]) backend.free(x);
    });

    it('a 128 x 1000 x 512 classifier-sized product (B x C x D, B^T layout)', async () => {
      await parity(matmulCase(128, 1000, 512, false, true, 1, 0, 7), tol(512), '128x1000x512', subject());
    });
  });
}

it('a software adapter defaults to the direct form, and a 1x1 convolution runs on the matmul', async () => {
  const logs: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((line: string) => void logs.push(line));
  const backend = await createNodeWebGpuBackend({ debugWgsl: true });
  try {
    expect(backend.capabilities.hardware).toBe(false);
    await parity(matmulCase(9, 9, 9, false, false), tol(9), 'default form', Promise.resolve(backend));
    const c = { batch: 2, inChannels: 3, inHeight: 2, inWidth: 2, outChannels: 4, kernelH: 1, kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1, outHeight: 2, outWidth: 2 };
    await parity({
      buffers: { x: randomF32(3, 24), w: randomF32(4, 12), o: new Float32Array(32) },
      compare: ['o'],
      call: (kt, bf) => kt.conv2d(bf.x, bf.w, bf.o, c),
    }, tol(3), '1x1 conv', Promise.resolve(backend));
  } finally {
    spy.mockRestore();
    backend.dispose();
  }
  const keys = logs.map((l) => l.split('\n')[0]);
  expect(keys.filter((k) => k.includes('matmul'))).toEqual(['[fr webgpu] shader matmul-direct:nn:8x8']);
  expect(keys.some((k) => k.includes('conv2d'))).toBe(false);
});
