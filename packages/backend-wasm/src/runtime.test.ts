import { describe, expect, test } from 'vitest';
import { splitInto } from './runtime.js';

describe('splitInto', () => {
  test('covers [0, total) in order, on multiples of the quantum, pieces within one quantum of each other', () => {
    for (const [total, pieces, quantum] of [[256, 6, 8], [512, 6, 8], [10000, 6, 8], [49, 6, 8], [5, 6, 4], [300, 2, 1], [7, 1, 1], [1, 9, 4]]) {
      const ranges = splitInto(total, pieces, quantum);
      expect(ranges.length).toBeLessThanOrEqual(pieces);
      expect(ranges[0][0]).toBe(0);
      expect(ranges.at(-1)![1]).toBe(total);
      ranges.forEach(([s, e], i) => {
        expect(e).toBeGreaterThan(s);
        if (i > 0) expect(s).toBe(ranges[i - 1][1]);
        if (e < total) expect(e % quantum).toBe(0);
      });
      // All but a last piece cut short by the total differ by at most one quantum.
      const sizes = ranges.map(([s, e]) => Math.ceil((e - s) / quantum));
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });

  test('256 columns for two threads: six pieces of 40 or 48, so each thread\'s run of three is 128', () => {
    const sizes = splitInto(256, 6, 8).map(([s, e]) => e - s);
    expect(sizes).toEqual([40, 48, 40, 40, 48, 40]);
  });

  test('nothing to split is one empty range', () => {
    expect(splitInto(0, 6, 8)).toEqual([[0, 0]]);
  });
});
