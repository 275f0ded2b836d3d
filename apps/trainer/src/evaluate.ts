/** Verification of a backbone on pair sets, as insightface does it (flip fusion, 10 folds). */
import { DataError, noGrad, tensor, tidy, type Backend, type Module } from '@fr/core';
import { flipFuse, rocSummary, verifyPairs, type TarAtFar } from '@fr/eval';
import { writeNormalized, type VerificationSet } from './data.js';

export interface VerificationReport {
  set: string;
  pairs: number;
  accuracyMean: number;
  accuracyStd: number;
  val: number;
  far: number;
  auc: number;
  eer: number;
  tarAtFar: TarAtFar[];
  /** Cosine similarity per pair, for histograms; same-pair flags alongside. */
  scores: number[];
  issame: boolean[];
  /** ROC points (fpr, tpr) thinned for plotting. */
  roc: { fpr: number[]; tpr: number[] };
}

/** Embeddings of every image of a set: normalize(emb(x) + emb(flip(x))), row-major. */
export async function embedSet(
  backend: Backend,
  module: Module,
  set: VerificationSet,
  embeddingDim: number,
  batchSize = 128,
  /** Awaited between batches (to yield to the event loop; it may throw to stop). */
  between?: () => Promise<void>,
): Promise<Float32Array> {
  const [c, h, w] = set.shape;
  const out = new Float32Array(set.length * embeddingDim);
  for (let start = 0; start < set.length; start += batchSize) {
    if (between) await between();
    const n = Math.min(batchSize, set.length - start);
    const plain = new Float32Array(n * c * h * w);
    const mirrored = new Float32Array(n * c * h * w);
    for (let k = 0; k < n; k++) {
      const img = await set.image(start + k);
      if (img.width !== w || img.height !== h) {
        throw new DataError(`verification set ${set.label}${set.decodedFrom ? ` (${set.decodedFrom})` : ''}: image ${start + k} is ${img.width}x${img.height}, the set's images are ${w}x${h}`);
      }
      writeNormalized(img, plain, k * c * h * w, false);
      writeNormalized(img, mirrored, k * c * h * w, true);
    }
    const [e1, e2] = noGrad(() => tidy(() => [
      module.forward(tensor(backend, plain, [n, c, h, w]), { training: false }),
      module.forward(tensor(backend, mirrored, [n, c, h, w]), { training: false }),
    ]));
    const [a, b] = await Promise.all([e1.data(), e2.data()]);
    e1.dispose();
    e2.dispose();
    out.set(flipFuse(a, b, embeddingDim), start * embeddingDim);
  }
  const bad = out.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new DataError(`${set.label}: the embeddings of image ${Math.floor(bad / embeddingDim)} are not finite (${out[bad]}); the model has diverged`);
  }
  return out;
}

/** Verification results of unit-norm embeddings laid out as pairs (rows 2p, 2p+1). */
export function verificationReport(set: string, embeddings: Float32Array, dim: number, issame: boolean[]): VerificationReport {
  const v = verifyPairs(embeddings, dim, issame);
  const scores: number[] = [];
  for (let p = 0; p < issame.length; p++) {
    let s = 0;
    for (let t = 0; t < dim; t++) s += embeddings[2 * p * dim + t] * embeddings[(2 * p + 1) * dim + t];
    scores.push(s);
  }
  const r = rocSummary(scores, issame);
  const stride = Math.max(1, Math.floor(r.roc.fpr.length / 400));
  const fpr: number[] = [], tpr: number[] = [];
  for (let i = 0; i < r.roc.fpr.length; i += stride) {
    fpr.push(r.roc.fpr[i]);
    tpr.push(r.roc.tpr[i]);
  }
  fpr.push(1);
  tpr.push(1);
  return {
    set, pairs: issame.length, accuracyMean: v.accuracyMean, accuracyStd: v.accuracyStd, val: v.val, far: v.far,
    auc: r.auc, eer: r.eer, tarAtFar: r.tarAtFar, scores, issame, roc: { fpr, tpr },
  };
}

/** Rows laid out as pairs (pair p = rows 2p, 2p+1) from per-image rows. */
export function pairRows(embeddings: Float32Array, dim: number, pairImages: Int32Array): Float32Array {
  const out = new Float32Array(pairImages.length * dim);
  pairImages.forEach((img, r) => out.set(embeddings.subarray(img * dim, (img + 1) * dim), r * dim));
  return out;
}

export async function evaluateModel(
  backend: Backend, module: Module, set: VerificationSet, dim: number, between?: () => Promise<void>,
): Promise<VerificationReport> {
  const embeddings = await embedSet(backend, module, set, dim, 128, between);
  return verificationReport(set.label, pairRows(embeddings, dim, set.pairImages), dim, set.issame);
}

/** The baseline every model must beat: raw pixels, normalised, compared by cosine similarity. */
export async function rawPixelReport(set: VerificationSet): Promise<VerificationReport> {
  const [c, h, w] = set.shape;
  const dim = c * h * w;
  const emb = new Float32Array(set.length * dim);
  for (let i = 0; i < set.length; i++) writeNormalized(await set.image(i), emb, i * dim, false);
  for (let i = 0; i < set.length; i++) {
    let ss = 0;
    for (let t = 0; t < dim; t++) ss += emb[i * dim + t] ** 2;
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let t = 0; t < dim; t++) emb[i * dim + t] *= inv;
  }
  return verificationReport(`${set.label} (raw pixels)`, pairRows(emb, dim, set.pairImages), dim, set.issame);
}

export function formatReport(r: VerificationReport): string {
  const tar = r.tarAtFar.filter((t) => t.far >= 1e-3).map((t) => `TAR@FAR=${t.far.toExponential(0)} ${(100 * t.tar).toFixed(2)}%`).join(', ');
  return `${r.set}: accuracy ${(100 * r.accuracyMean).toFixed(2)}% ± ${(100 * r.accuracyStd).toFixed(2)} over 10 folds, AUC ${r.auc.toFixed(4)}, EER ${(100 * r.eer).toFixed(2)}%, ${tar}`;
}
