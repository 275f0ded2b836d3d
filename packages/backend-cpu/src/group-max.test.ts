import { describe, expect, test } from 'vitest';
import { backward, maxOverGroups, ShapeError, sum, tensor, tidy } from '@fr/core';
import { gradCheck } from '@fr/core/testing';
import { createCpuBackend } from './index.js';

const backend = createCpuBackend();

describe('maxOverGroups', () => {
  test('takes the max of each contiguous group and routes the gradient to every element equal to it (ties: all, as MXNet)', async () => {
    // Two rows, two groups of three.
    const x = tensor(backend, [0.1, 0.5, 0.2, -1, -3, -2, 0.7, 0.7, 0.1, 2, 4, 3], [2, 6], { requiresGrad: true });
    const y = tidy(() => {
      const y = maxOverGroups(x, 3);
      backward(sum(y));
      return y;
    });
    expect(y.shape).toEqual([2, 2]);
    expect(Array.from(await y.data())).toEqual([0.5, -1, 0.7, 4].map(Math.fround));
    expect(Array.from(await x.grad!.data())).toEqual([0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0]);
  });

  test('gradient matches central differences', async () => {
    const data = Float32Array.from({ length: 4 * 12 }, (_, i) => Math.sin(i * 1.7) * 2);
    const r = await gradCheck(backend, ([t]) => maxOverGroups(t, 3), [{ shape: [4, 12], data }]);
    expect(r.inputs[0].maxError, JSON.stringify(r.inputs[0])).toBeLessThanOrEqual(r.inputs[0].allowed);
    expect(r.passed).toBe(true);
  });

  test('refuses a width that does not split into groups', () => {
    const x = tensor(backend, new Float32Array(10), [2, 5]);
    expect(() => maxOverGroups(x, 3)).toThrow(ShapeError);
    expect(() => maxOverGroups(x, 3)).toThrow(/do not split into groups of 3/);
  });
});
