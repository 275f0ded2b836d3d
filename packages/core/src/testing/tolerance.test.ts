import { describe, expect, it } from 'vitest';
import { compareTolerance, expectClose } from './tolerance.js';

describe('the closeness rule', () => {
  it('scales rtol by the largest expected value by default', () => {
    // 0.01 off on an element of 0.1: within 1e-3 * 100 (the largest want), not within 1e-3 * 0.1.
    const got = [100, 0.11];
    const want = [100, 0.1];
    expect(compareTolerance(got, want, { atol: 0, rtol: 1e-3 })).toMatchObject({ pass: true, worst: 1, limit: 0.1 });
    const c = compareTolerance(got, want, { atol: 0, rtol: 1e-3, relativeTo: 'element' });
    expect(c.pass).toBe(false);
    expect(c.worst).toBe(1);
    expect(c.limit).toBeCloseTo(1e-4, 12);
    expect(() => expectClose(got, want, { atol: 0, rtol: 1e-3, relativeTo: 'element' }, 'y')).toThrow(/^y\[1\]: got 0.11, want 0.1/);
  });

  it('names the element furthest past its own limit, and passes NaN against NaN only', () => {
    const want = [1000, 1, NaN];
    expect(compareTolerance([1000.5, 1.2, NaN], want, { atol: 0, rtol: 1e-3, relativeTo: 'element' }).worst).toBe(1);
    expect(compareTolerance([1000, 1, NaN], want, { atol: 0, rtol: 0, relativeTo: 'element' }).pass).toBe(true);
    expect(compareTolerance([1000, 1, 0], want, { atol: 1, rtol: 1, relativeTo: 'element' }).pass).toBe(false);
    expect(compareTolerance([1000, 1], want, { atol: 1, rtol: 1, relativeTo: 'element' }).pass).toBe(false);
  });
});
