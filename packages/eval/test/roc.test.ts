import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { auc, eer, IJB_FARS, rocCurve, rocSummary, tarAtFar } from '../src/index.js';

interface Case {
  name: string;
  labels: boolean[];
  scores: number[];
  expected: {
    fpr: number[]; tpr: number[]; thresholds: number[]; fullFpr: number[]; fullTpr: number[];
    auc: number; aucTrapezoid: number; eer: number; tarAtFar: number[];
  };
}
const fixture: { sklearn: string; cases: Case[] } = JSON.parse(readFileSync(new URL('./fixtures/roc-sklearn.json', import.meta.url), 'utf8'));

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('ROC against scikit-learn', () => {
  for (const c of fixture.cases) {
    it(`${c.name}: roc_curve, AUC, EER, TAR@FAR`, () => {
      const roc = rocCurve(c.scores, c.labels);
      expect(maxDiff(roc.fpr, c.expected.fpr)).toBeLessThan(1e-12);
      expect(maxDiff(roc.tpr, c.expected.tpr)).toBeLessThan(1e-12);
      expect(maxDiff(roc.thresholds.subarray(1), c.expected.thresholds)).toBe(0);
      expect(roc.thresholds[0]).toBe(Infinity);
      const full = rocCurve(c.scores, c.labels, { dropIntermediate: false });
      expect(maxDiff(full.fpr, c.expected.fullFpr)).toBeLessThan(1e-12);
      expect(maxDiff(full.tpr, c.expected.fullTpr)).toBeLessThan(1e-12);
      expect(Math.abs(auc(roc) - c.expected.auc)).toBeLessThan(1e-12);
      expect(Math.abs(auc(full) - c.expected.aucTrapezoid)).toBeLessThan(1e-12);
      expect(Math.abs(eer(roc) - c.expected.eer)).toBeLessThan(1e-12);
      expect(Math.abs(eer(full) - c.expected.eer)).toBeLessThan(1e-12);
      const tars = tarAtFar(roc);
      expect(tars.map((t) => t.far)).toEqual(IJB_FARS);
      expect(tars.map((t) => t.tar)).toEqual(c.expected.tarAtFar);
      const s = rocSummary(c.scores, c.labels);
      expect(s.auc).toBeCloseTo(c.expected.auc, 12);
    });
  }

  it('refuses one-class input and mismatched lengths', () => {
    expect(() => rocCurve([0.1, 0.2], [true, true])).toThrow(/both positive and negative/);
    expect(() => rocCurve([0.1], [true, false])).toThrow(/1 scores but 2 labels/);
    expect(() => rocCurve([NaN, 0.2], [true, false])).toThrow(/score 0 is NaN/);
  });

  it('a perfect separation has AUC 1 and EER 0', () => {
    const s = rocSummary([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]);
    expect(s.auc).toBe(1);
    expect(s.eer).toBe(0);
  });
});
