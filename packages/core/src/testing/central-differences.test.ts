import { expect, test } from 'vitest';
import { centralDifferences, worstDisagreement } from './central-differences.js';

test('central differences of a cubic are exact up to eps^2 terms, and leave the data as it was', async () => {
  const data = Float64Array.of(0.5, -2, 3);
  // f = sum x^3 (the cubic's central difference is 3x^2 + eps^2)
  const numeric = await centralDifferences(data, () => data.reduce((s, v) => s + v ** 3, 0), 1e-3);
  numeric.forEach((d, j) => expect(d).toBeCloseTo(3 * data[j] ** 2 + 1e-6, 9));
  expect(Array.from(data)).toEqual([0.5, -2, 3]);
  // Only the chosen indices, in their order, through an async function.
  expect(await centralDifferences(data, async () => data[2] * 10 + data[0], 1e-3, [2, 0])).toEqual([expect.closeTo(10, 9), expect.closeTo(1, 9)]);
});

test('the worst disagreement: the largest error, where, and the error allowed; a NaN is the worst', () => {
  const tol = { atol: 0.01, rtol: 0.1 };
  expect(worstDisagreement([1, 2, 3.5], [1, 2.1, 3], tol)).toEqual({ maxError: 0.5, allowed: expect.closeTo(0.31, 12), index: 2, analytic: 3.5, numeric: 3 });
  // With indices, numeric[t] is the derivative at analytic[indices[t]].
  expect(worstDisagreement([9, 1, 2], [2, 1.5], tol, [2, 1])).toMatchObject({ maxError: 0.5, index: 1 });
  expect(worstDisagreement([1, NaN], [1, 1], tol)).toMatchObject({ index: 1, maxError: NaN });
});
