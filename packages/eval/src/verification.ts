/**
 * LFW-protocol verification as insightface computes it (recognition/arcface_torch/eval/
 * verification.py: calculate_roc, calculate_accuracy, calculate_val, calculate_val_far).
 */
import { DataError } from '@fr/core';

/** numpy.arange(start, stop, step): value i is start + i * step (numpy fills it that way). */
export function arange(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = start + i * step;
  return out;
}

/** Thresholds on squared L2 distance used to pick the accuracy threshold: 0..4 step 0.01. */
export const ACCURACY_THRESHOLDS: readonly number[] = arange(0, 4, 0.01);
/** Thresholds used for VAL@FAR: 0..4 step 0.001, as insightface. */
export const VAL_THRESHOLDS: readonly number[] = arange(0, 4, 0.001);

export interface VerificationOptions {
  /** Number of contiguous folds (sklearn KFold without shuffling). Default 10. */
  folds?: number;
  /** Candidate thresholds for accuracy, tpr and fpr. Default 0..4 step 0.01. */
  thresholds?: readonly number[];
  /** Candidate thresholds for VAL@FAR. Default 0..4 step 0.001. */
  valThresholds?: readonly number[];
  /** FAR at which VAL is read. Default 1e-3. */
  farTarget?: number;
}

export interface VerificationResult {
  /** Accuracy of each test fold at the threshold chosen on the other folds. */
  foldAccuracy: number[];
  accuracyMean: number;
  /** Population standard deviation (numpy's default ddof = 0). */
  accuracyStd: number;
  /** The threshold chosen for each fold. */
  bestThresholds: number[];
  thresholds: number[];
  /** True and false positive rate per threshold, averaged over the test folds. */
  tpr: number[];
  fpr: number[];
  /** VAL (true accept rate) at the FAR target, mean and std over folds, and the FAR reached. */
  val: number;
  valStd: number;
  far: number;
}

/** Squared L2 distance of each pair (rows 2p and 2p+1) in float64, in [0, 4] for unit rows. */
export function pairDistances(embeddings: ArrayLike<number>, dim: number): Float64Array {
  if (!Number.isInteger(dim) || dim < 1 || embeddings.length % (2 * dim) !== 0) {
    throw new DataError(`pairDistances: ${embeddings.length} values are not whole pairs of ${dim}-d embeddings`);
  }
  const pairs = embeddings.length / (2 * dim);
  const out = new Float64Array(pairs);
  for (let p = 0; p < pairs; p++) {
    const a = 2 * p * dim, b = a + dim;
    let s = 0;
    for (let t = 0; t < dim; t++) {
      const d = embeddings[a + t] - embeddings[b + t];
      s += d * d;
    }
    out[p] = s;
  }
  return out;
}

/** Fold boundaries of sklearn KFold(n_splits, shuffle=False): the first n % k folds are one larger. */
export function kfoldRanges(n: number, folds: number): [number, number][] {
  if (!Number.isInteger(folds) || folds < 2 || folds > n) {
    throw new DataError(`kfold: cannot split ${n} pairs into ${folds} folds`);
  }
  const out: [number, number][] = [];
  let start = 0;
  for (let f = 0; f < folds; f++) {
    const size = Math.floor(n / folds) + (f < n % folds ? 1 : 0);
    out.push([start, start + size]);
    start += size;
  }
  return out;
}

interface Counts { tp: number; fp: number; tn: number; fn: number }

/** Confusion counts of `dist < threshold` over [from, to), or over everything else if `invert`. */
function counts(dist: Float64Array, issame: readonly boolean[], threshold: number, from: number, to: number, invert: boolean): Counts {
  const c: Counts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  const visit = (i: number) => {
    const pred = dist[i] < threshold;
    if (pred) { if (issame[i]) c.tp++; else c.fp++; }
    else if (issame[i]) c.fn++; else c.tn++;
  };
  if (!invert) for (let i = from; i < to; i++) visit(i);
  else {
    for (let i = 0; i < from; i++) visit(i);
    for (let i = to; i < dist.length; i++) visit(i);
  }
  return c;
}

/**
 * The threshold at which the FAR on the training folds reaches `target`. insightface calls
 * scipy interp1d(far, thresholds, 'slinear'), which fails (or is ill-defined) when FAR values
 * repeat, as they always do on a fine threshold grid. Here: FAR is non-decreasing in the
 * threshold, so take the last grid point i with far[i] <= target and interpolate linearly
 * between (far[i], t[i]) and (far[i+1], t[i+1]), where far[i+1] > target strictly, so the
 * segment never has zero width. Where the target is reached exactly, this picks the largest
 * threshold with that FAR. If no threshold reaches the target FAR, 0 (as insightface).
 */
export function thresholdAtFar(far: readonly number[], thresholds: readonly number[], target: number): number {
  let max = -Infinity;
  for (const f of far) if (f > max) max = f;
  if (!(max >= target)) return 0;
  let i = -1;
  while (i + 1 < far.length && far[i + 1] <= target) i++;
  if (i < 0) return thresholds[0];
  if (i === far.length - 1) return thresholds[i];
  const w = (target - far[i]) / (far[i + 1] - far[i]);
  return thresholds[i] + w * (thresholds[i + 1] - thresholds[i]);
}

/** Number of values strictly below x in a sorted array. */
function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function meanStd(xs: readonly number[]): [number, number] {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - m) * (b - m), 0) / xs.length;
  return [m, Math.sqrt(v)];
}

/** Verification from precomputed squared L2 distances (smaller = more alike). */
export function verifyDistances(dist: Float64Array, issame: readonly boolean[], o: VerificationOptions = {}): VerificationResult {
  if (dist.length !== issame.length) {
    throw new DataError(`verification: ${dist.length} distances but ${issame.length} issame labels`);
  }
  const thresholds = [...(o.thresholds ?? ACCURACY_THRESHOLDS)];
  const valThresholds = o.valThresholds ?? VAL_THRESHOLDS;
  const farTarget = o.farTarget ?? 1e-3;
  const ranges = kfoldRanges(dist.length, o.folds ?? 10);
  const nt = thresholds.length;
  const tpr = new Array<number>(nt).fill(0);
  const fpr = new Array<number>(nt).fill(0);
  const foldAccuracy: number[] = [];
  const bestThresholds: number[] = [];
  const vals: number[] = [];
  const fars: number[] = [];
  for (const [from, to] of ranges) {
    // Best threshold on the other folds: the first maximum of accuracy (numpy argmax). The
    // training set size is fixed, so comparing correct counts is comparing accuracies.
    let best = 0, bestCorrect = -1;
    for (let t = 0; t < nt; t++) {
      const c = counts(dist, issame, thresholds[t], from, to, true);
      if (c.tp + c.tn > bestCorrect) { bestCorrect = c.tp + c.tn; best = t; }
    }
    for (let t = 0; t < nt; t++) {
      const c = counts(dist, issame, thresholds[t], from, to, false);
      tpr[t] += c.tp + c.fn === 0 ? 0 : c.tp / (c.tp + c.fn);
      fpr[t] += c.fp + c.tn === 0 ? 0 : c.fp / (c.fp + c.tn);
    }
    const c = counts(dist, issame, thresholds[best], from, to, false);
    foldAccuracy.push((c.tp + c.tn) / (to - from));
    bestThresholds.push(thresholds[best]);

    // VAL@FAR (calculate_val): FAR per threshold on the training folds, interpolated.
    // Sorted negative distances make each FAR a binary search (4000 thresholds x 10 folds).
    const neg: number[] = [];
    for (let i = 0; i < dist.length; i++) if ((i < from || i >= to) && !issame[i]) neg.push(dist[i]);
    const negSorted = Float64Array.from(neg).sort();
    const farTrain = valThresholds.map((th) => lowerBound(negSorted, th) / negSorted.length);
    const th = thresholdAtFar(farTrain, valThresholds, farTarget);
    const k = counts(dist, issame, th, from, to, false);
    vals.push(k.tp + k.fn === 0 ? 0 : k.tp / (k.tp + k.fn));
    fars.push(k.fp + k.tn === 0 ? 0 : k.fp / (k.fp + k.tn));
  }
  const folds = ranges.length;
  for (let t = 0; t < nt; t++) { tpr[t] /= folds; fpr[t] /= folds; }
  const [accuracyMean, accuracyStd] = meanStd(foldAccuracy);
  const [val, valStd] = meanStd(vals);
  const [far] = meanStd(fars);
  return { foldAccuracy, accuracyMean, accuracyStd, bestThresholds, thresholds, tpr, fpr, val, valStd, far };
}

/**
 * Verification of pairs of embeddings laid out as insightface does: pair p is rows 2p and 2p+1 of
 * a row-major (2 * pairs) x dim array. Rows should already be L2-normalised (see `flipFuse`).
 */
export function verifyPairs(embeddings: ArrayLike<number>, dim: number, issame: readonly boolean[], o: VerificationOptions = {}): VerificationResult {
  return verifyDistances(pairDistances(embeddings, dim), issame, o);
}
