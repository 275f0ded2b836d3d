import { backward, maxOverGroups, sum, tensor, tidy } from '@fr/core';
import { describe, expect, it } from 'vitest';
import { gpu, parity, randomF32 } from './helpers.js';

describe('groupMax matches the CPU backend', () => {
  it('values and arg-max indices, groups of 1 to 5, rows wider than a workgroup', async () => {
    for (const [rows, groups, size] of [[1, 1, 1], [2, 7, 5], [9, 300, 3], [3, 100, 1]]) {
      const n = rows * groups;
      await parity({
        buffers: { x: randomF32(rows + groups, n * size, -1, 1), out: new Float32Array(n), index: new Int32Array(n) },
        compare: ['out', 'index'],
        call: (k, b) => k.groupMax(b.x, b.out, b.index, rows, groups, size),
      }, { atol: 0, rtol: 0 }, `${rows}x${groups}x${size}`);
    }
  });

  it('backward with ties, groups of 1 to 5: every element equal to its max takes the gradient, as on the CPU', async () => {
    for (const [rows, groups, size] of [[1, 1, 1], [2, 7, 5], [9, 300, 3]]) {
      const n = rows * groups;
      const x = Float32Array.from(randomF32(rows + groups, n * size, -2, 2), Math.round);
      const mx = Float32Array.from({ length: n }, (_, i) => Math.max(...x.subarray(i * size, (i + 1) * size)));
      await parity({
        buffers: { x, mx, g: randomF32(groups, n, -1, 1), dx: new Float32Array(n * size).fill(7) },
        compare: ['dx'],
        call: (k, b) => k.groupMaxBackward(b.x, b.mx, b.g, b.dx, rows, groups, size),
      }, { atol: 0, rtol: 0 }, `backward ${rows}x${groups}x${size}`);
    }
  });

  it('the index keeps the first maximum; the op routes its gradient to every tied maximum', async () => {
    const backend = await gpu();
    const x = tensor(backend, [0.7, 0.7, 0.1, 2, 4, 4], [1, 6], { requiresGrad: true });
    const y = tidy(() => {
      const y = maxOverGroups(x, 3);
      backward(sum(y));
      return y;
    });
    expect(Array.from(await y.data())).toEqual([0.7, 4].map(Math.fround));
    expect(Array.from(await x.grad!.data())).toEqual([1, 1, 0, 0, 1, 1]);
    x.dispose();
    y.dispose();
  });
});
