import { describe, expect, test } from 'vitest';
import { splitInto, splitRange } from './runtime.js';

/** The ranges cover [0, total) in order, none empty, on multiples of the quantum (but for the end). */
function expectCovers(ranges: [number, number][], total: number, quantum: number): void {
  expect(ranges[0][0]).toBe(0);
  expect(ranges.at(-1)![1]).toBe(total);
  ranges.forEach(([s, e], i) => {
    expect(e).toBeGreaterThan(s);
    if (i > 0) expect(s).toBe(ranges[i - 1][1]);
    if (e < total) expect(e % quantum).toBe(0);
  });
}

describe('splitInto', () => {
  test('covers [0, total) in order, on multiples of the quantum, pieces within one quantum of each other', () => {
    for (const [total, pieces, quantum] of [[256, 6, 8], [512, 6, 8], [10000, 6, 8], [49, 6, 8], [5, 6, 4], [300, 2, 1], [7, 1, 1], [1, 9, 4]]) {
      const ranges = splitInto(total, pieces, quantum);
      expect(ranges.length).toBeLessThanOrEqual(pieces);
      expectCovers(ranges, total, quantum);
      // All but a last piece cut short by the total differ by at most one quantum.
      const sizes = ranges.map(([s, e]) => Math.ceil((e - s) / quantum));
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });

  test('nothing to split is one empty range', () => {
    expect(splitInto(0, 6, 8)).toEqual([[0, 0]]);
  });
});

describe('splitRange', () => {
  test('256 columns for two threads: a share of 128 each, in a half and two quarters', () => {
    expect(splitRange(256, 2, 8).map(([s, e]) => e - s)).toEqual([64, 32, 32, 64, 32, 32]);
  });

  test('one run of parts per thread, the runs within one quantum of each other, each in parts that do not grow', () => {
    for (const [total, threads, quantum] of [[256, 2, 8], [10000, 2, 8], [49, 2, 8], [300, 3, 1], [64, 3, 8], [1100, 3, 4], [517, 4, 4]]) {
      const ranges = splitRange(total, threads, quantum);
      expectCovers(ranges, total, quantum);
      // The pool gives thread t parts [t * parts / threads, (t + 1) * parts / threads).
      expect(ranges.length % threads).toBe(0);
      const per = ranges.length / threads;
      const runs = Array.from({ length: threads }, (_, t) => ranges.slice(t * per, (t + 1) * per));
      // In quanta (a last share cut short by the total counts its partial quantum whole).
      const shares = runs.map((run) => Math.ceil(run.reduce((sum, [s, e]) => sum + e - s, 0) / quantum));
      expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      for (const run of runs) {
        const sizes = run.map(([s, e]) => Math.ceil((e - s) / quantum));
        sizes.forEach((q, i) => i > 0 && expect(q).toBeLessThanOrEqual(sizes[i - 1]));
      }
    }
  });

  test('one thread: one range; several units of work: even pieces among them', () => {
    expect(splitRange(256, 1, 8)).toEqual([[0, 256]]);
    expect(splitRange(256, 2, 8, 3).map(([s, e]) => e - s)).toEqual([128, 128]);
  });
});
