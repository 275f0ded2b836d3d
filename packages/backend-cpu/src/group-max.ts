import type { KernelTable } from '@fr/core';
import { f32, i32, type CpuBuffer } from './buffer.js';

/** Max over contiguous groups of each row, with the flat index of the (first) maximum. */
export const groupMax: KernelTable<CpuBuffer>['groupMax'] = (x, out, index, rows, groups, size) => {
  const xs = f32(x), o = f32(out), idx = i32(index);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const start = (r * groups + g) * size;
      let best = xs[start];
      let at = start;
      for (let k = 1; k < size; k++) {
        if (xs[start + k] > best) {
          best = xs[start + k];
          at = start + k;
        }
      }
      o[r * groups + g] = best;
      idx[r * groups + g] = at;
    }
  }
};
