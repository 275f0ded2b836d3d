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

  it('ties go to the first maximum; the op routes its gradient there', async () => {
    const backend = await gpu();
    const x = tensor(backend, [0.7, 0.7, 0.1, 2, 4, 4], [1, 6], { requiresGrad: true });
    const y = tidy(() => {
      const y = maxOverGroups(x, 3);
      backward(sum(y));
      return y;
    });
    expect(Array.from(await y.data())).toEqual([0.7, 4].map(Math.fround));
    expect(Array.from(await x.grad!.data())).toEqual([1, 0, 0, 0, 1, 0]);
    x.dispose();
    y.dispose();
  });
});
