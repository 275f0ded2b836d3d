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

/** Its backward: every element equal to its group's max gets the group's gradient (ties included, as MXNet). */
export const groupMaxBackward: KernelTable<CpuBuffer>['groupMaxBackward'] = (x, out, gradOut, gradX, rows, groups, size) => {
  const xs = f32(x), o = f32(out), g = f32(gradOut), d = f32(gradX);
  for (let i = 0; i < rows * groups * size; i++) {
    const group = Math.floor(i / size);
    d[i] = xs[i] === o[group] ? g[group] : 0;
  }
};
