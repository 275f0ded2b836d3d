/** ROC, AUC, EER and TAR@FAR from similarity scores (higher = more alike), as scikit-learn and the IJB evaluation define them. */
import { DataError } from '@fr/core';

export interface RocCurve {
  /** Ascending false positive rate; the first point is (0, 0). */
  fpr: Float64Array;
  tpr: Float64Array;
  /** Score thresholds (accept when score >= threshold); the first is +Infinity. */
  thresholds: Float64Array;
}

export interface RocOptions {
  /** Drop points on straight horizontal or vertical runs, as sklearn's roc_curve does by default. */
  dropIntermediate?: boolean;
}

function checkInputs(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>, what: string): void {
  if (scores.length !== labels.length) throw new DataError(`${what}: ${scores.length} scores but ${labels.length} labels`);
  if (scores.length === 0) throw new DataError(`${what}: no scores`);
  for (let i = 0; i < scores.length; i++) {
    if (!Number.isFinite(scores[i])) throw new DataError(`${what}: score ${i} is ${scores[i]}`);
  }
}

/** sklearn.metrics.roc_curve(labels, scores, drop_intermediate=...) for binary labels. */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>, o: RocOptions = {}): RocCurve {
  checkInputs(scores, labels, 'rocCurve');
  const n = scores.length;
  // Descending by score; a stable sort of the reversed mergesort order is unnecessary because
  // tied scores collapse into one threshold below.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let tps: number[] = [], fps: number[] = [], ths: number[] = [];
  let tp = 0;
  for (let r = 0; r < n; r++) {
    const i = order[r];
    if (labels[i]) tp++;
    if (r === n - 1 || scores[order[r + 1]] !== scores[i]) {
      tps.push(tp);
      fps.push(r + 1 - tp);
      ths.push(scores[i]);
    }
  }
  if ((o.dropIntermediate ?? true) && tps.length > 2) {
    const keep: number[] = [0];
    for (let j = 1; j < tps.length - 1; j++) {
      const d2f = fps[j + 1] - 2 * fps[j] + fps[j - 1];
      const d2t = tps[j + 1] - 2 * tps[j] + tps[j - 1];
      if (d2f !== 0 || d2t !== 0) keep.push(j);
    }
    keep.push(tps.length - 1);
    tps = keep.map((j) => tps[j]); fps = keep.map((j) => fps[j]); ths = keep.map((j) => ths[j]);
  }
  const P = tps[tps.length - 1], N = fps[fps.length - 1];
  if (P === 0 || N === 0) throw new DataError(`rocCurve: needs both positive and negative pairs (got ${P} and ${N})`);
  const m = tps.length + 1;
  const out: RocCurve = { fpr: new Float64Array(m), tpr: new Float64Array(m), thresholds: new Float64Array(m) };
  out.thresholds[0] = Infinity;
  for (let j = 0; j < tps.length; j++) {
    out.fpr[j + 1] = fps[j] / N;
    out.tpr[j + 1] = tps[j] / P;
    out.thresholds[j + 1] = ths[j];
  }
  return out;
}

/** Area under the ROC curve by the trapezoidal rule (sklearn.metrics.auc on roc_curve). */
export function auc(roc: RocCurve): number {
  let s = 0;
  for (let j = 1; j < roc.fpr.length; j++) s += (roc.fpr[j] - roc.fpr[j - 1]) * (roc.tpr[j] + roc.tpr[j - 1]) / 2;
  return s;
}

/**
 * Equal error rate: where the false negative rate 1 - tpr meets the false positive rate on the
 * ROC polyline (linear interpolation between the two points where their difference changes sign).
 */
export function eer(roc: RocCurve): number {
  const { fpr, tpr } = roc;
  for (let j = 1; j < fpr.length; j++) {
    const d1 = 1 - tpr[j] - fpr[j];
    if (d1 <= 0) {
      const d0 = 1 - tpr[j - 1] - fpr[j - 1];
      const w = d0 / (d0 - d1);
      return fpr[j - 1] + w * (fpr[j] - fpr[j - 1]);
    }
  }
  return 1;
}

/** The FAR levels reported by the IJB-B/C evaluation. */
export const IJB_FARS: readonly number[] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

export interface TarAtFar { far: number; tar: number; /** The FPR of the ROC point read. */ fpr: number; threshold: number }

/**
 * TAR at each FAR read at the ROC point with the nearest FPR, as insightface's IJB evaluation does
 * (on sklearn's roc_curve with its default drop_intermediate; among equally near points it takes
 * the one with the largest index, because it searches the flipped curve for the first minimum).
 */
export function tarAtFar(roc: RocCurve, fars: readonly number[] = IJB_FARS): TarAtFar[] {
  return fars.map((far) => {
    let best = 0, bestDiff = Infinity;
    for (let j = 0; j < roc.fpr.length; j++) {
      const d = Math.abs(roc.fpr[j] - far);
      if (d <= bestDiff) { bestDiff = d; best = j; }
    }
    return { far, tar: roc.tpr[best], fpr: roc.fpr[best], threshold: roc.thresholds[best] };
  });
}

export interface RocSummary {
  roc: RocCurve;
  auc: number;
  eer: number;
  tarAtFar: TarAtFar[];
}

/** ROC, AUC, EER and TAR@FAR (1e-6..1e-1) of similarity scores in one call. */
export function rocSummary(scores: ArrayLike<number>, labels: ArrayLike<boolean | number>, fars: readonly number[] = IJB_FARS): RocSummary {
  const roc = rocCurve(scores, labels);
  return { roc, auc: auc(roc), eer: eer(roc), tarAtFar: tarAtFar(roc, fars) };
}
