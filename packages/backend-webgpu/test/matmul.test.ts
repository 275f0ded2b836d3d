import { describe, expect, it } from 'vitest';
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

describe('matmul matches the CPU backend', () => {
  const dims = [1, 7, 65, 130];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      it(`trans ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} over m, n, k in {1, 7, 65, 130}`, async () => {
        for (const m of dims) for (const n of dims) for (const k of [1, 65, 130]) {
          await parity(matmulCase(m, n, k, transA, transB), tol(k), `${m}x${n}x${k}`);
        }
        // k = 7 and 17: tails of the 16-deep tile.
        await parity(matmulCase(7, 130, 7, transA, transB), tol(7), '7x130x7');
        await parity(matmulCase(65, 7, 17, transA, transB), tol(17), '65x7x17');
      });
    }
  }

  it('alpha and beta, and beta 0 ignores NaN in the output', async () => {
    await parity(matmulCase(33, 70, 20, false, true, 0.5, -2), tol(20), 'alpha/beta');
    const backend = await gpu();
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
    await parity(matmulCase(128, 1000, 512, false, true, 1, 0, 7), tol(512), '128x1000x512');
  });
});
