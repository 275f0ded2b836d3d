import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { arange, kfoldRanges, pairDistances, thresholdAtFar, verifyDistances, verifyPairs } from '../src/index.js';

interface Golden {
  name: string;
  inputs: { dim: number; embeddings: number[]; issame: boolean[] };
  expected: { foldAccuracy: number[]; accuracyMean: number; accuracyStd: number; tpr: number[]; fpr: number[] };
  tolerance: { accuracy: number };
}

const load = (name: string): Golden => JSON.parse(readFileSync(new URL(`./fixtures/verification-${name}.json`, import.meta.url), 'utf8'));

describe('insightface LFW protocol (golden vectors from calculate_roc)', () => {
  for (const name of ['separable', 'hard', 'lfw-size']) {
    it(`matches ${name}`, () => {
      const g = load(name);
      // The embeddings are float32 values; insightface computes on them as stored.
      const emb = Float32Array.from(g.inputs.embeddings);
      const r = verifyPairs(emb, g.inputs.dim, g.inputs.issame);
      const tol = g.tolerance.accuracy;
      expect(r.foldAccuracy).toHaveLength(10);
      r.foldAccuracy.forEach((a, i) => expect(Math.abs(a - g.expected.foldAccuracy[i])).toBeLessThanOrEqual(tol));
      expect(Math.abs(r.accuracyMean - g.expected.accuracyMean)).toBeLessThanOrEqual(tol);
      expect(Math.abs(r.accuracyStd - g.expected.accuracyStd)).toBeLessThanOrEqual(tol);
      expect(r.tpr).toHaveLength(400);
      let worst = 0;
      r.tpr.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - g.expected.tpr[i]), Math.abs(r.fpr[i] - g.expected.fpr[i])); });
      // The fixture stores rates with 9 decimals.
      expect(worst).toBeLessThanOrEqual(tol);
      // Thresholds are picked on the training folds, so a test fold may exceed the target FAR by a
      // pair or two; the mean FAR stays of the order of the target.
      expect(r.val).toBeGreaterThan(0);
      expect(r.val).toBeLessThanOrEqual(1);
      expect(r.far).toBeLessThan(0.01);
    });
  }
});

describe('protocol pieces', () => {
  it('arange matches numpy values and length', () => {
    const t = arange(0, 4, 0.01);
    expect(t).toHaveLength(400);
    expect(t[3]).toBe(3 * 0.01);
    expect(t[399]).toBe(399 * 0.01);
    expect(arange(0, 4, 0.001)).toHaveLength(4000);
  });

  it('folds are contiguous and the first n % k are one larger (sklearn KFold)', () => {
    expect(kfoldRanges(23, 10)).toEqual([[0, 3], [3, 6], [6, 9], [9, 11], [11, 13], [13, 15], [15, 17], [17, 19], [19, 21], [21, 23]]);
    expect(() => kfoldRanges(5, 10)).toThrow(/cannot split/);
  });

  it('pair distances are squared L2 of rows 2p and 2p+1', () => {
    const d = pairDistances([1, 0, 0, 1, 1, 0, 1, 0], 2);
    expect(Array.from(d)).toEqual([2, 0]);
    expect(() => pairDistances([1, 2, 3], 2)).toThrow(/not whole pairs/);
  });

  it('picks the first maximum and the threshold is chosen without the test fold', () => {
    // Same pairs at distance 0.5, different at 1.5: every threshold in (0.5, 1.5005] is perfect;
    // the first maximum is 0.51.
    const dist = Float64Array.from({ length: 100 }, (_, i) => (i % 2 ? 1.5005 : 0.5));
    const issame = Array.from({ length: 100 }, (_, i) => i % 2 === 0);
    const r = verifyDistances(dist, issame);
    expect(r.bestThresholds.every((t) => t === 51 * 0.01)).toBe(true);
    expect(r.accuracyMean).toBe(1);
    expect(r.accuracyStd).toBe(0);
    // VAL at FAR 1e-3: no negative is below any threshold <= 1.5, the largest threshold with FAR 0
    // interpolated towards the first with FAR 1.
    expect(r.val).toBe(1);
    expect(r.far).toBe(0);
  });
});

describe('VAL@FAR interpolation', () => {
  const th = [0, 1, 2, 3, 4];
  it('interpolates between the last FAR <= target and the next, despite repeated FARs', () => {
    expect(thresholdAtFar([0, 0, 0, 0.5, 1], th, 0.25)).toBeCloseTo(2.5, 12);
    expect(thresholdAtFar([0, 0.1, 0.1, 0.1, 1], th, 0.1)).toBe(3);
    expect(thresholdAtFar([0, 0.1, 0.1, 0.1, 0.1], th, 0.1)).toBe(4);
  });
  it('returns 0 when the target FAR is never reached (as insightface)', () => {
    expect(thresholdAtFar([0, 0, 0, 0, 0], th, 0.001)).toBe(0);
  });
  it('handles a curve starting above the target', () => {
    expect(thresholdAtFar([0.5, 0.6, 1, 1, 1], th, 0.1)).toBe(0);
  });
});
