/** Closed-set 1:N identification: rank-k accuracy of probes against a gallery. */
import { type Backend, DataError } from '@fr/core';
import { type BlockOptions, similarityBlocks } from './scores.js';

export interface IdentificationResult {
  /** cmc[k-1] = fraction of probes whose identity is among the k best-scoring gallery identities. */
  cmc: number[];
  rank1: number;
  rank5: number;
  /** Rank (1-based) of the true identity for each probe. */
  ranks: Int32Array;
}

export interface IdentificationOptions extends BlockOptions {
  /** Longest rank reported in the CMC. Default 10 (at least 5). */
  maxRank?: number;
}

/**
 * Scores every probe against every gallery row by cosine (rows should be unit vectors) and ranks
 * gallery identities by their best-scoring image. A probe's rank is 1 + the number of other
 * identities that score strictly higher than its own, so ties are resolved in the probe's favour.
 * A probe whose identity has no gallery image is a DataError (this is the closed-set protocol).
 */
export async function identify(
  backend: Backend,
  gallery: ArrayLike<number>,
  galleryLabels: ArrayLike<number>,
  probes: ArrayLike<number>,
  probeLabels: ArrayLike<number>,
  dim: number,
  o: IdentificationOptions = {},
): Promise<IdentificationResult> {
  const ids = [...new Set(Array.from(galleryLabels))];
  const idIndex = new Map(ids.map((id, i) => [id, i]));
  const galleryId = Int32Array.from(galleryLabels, (l) => idIndex.get(l)!);
  if (gallery.length !== galleryLabels.length * dim) throw new DataError(`identify: gallery has ${gallery.length / dim} rows but ${galleryLabels.length} labels`);
  if (probes.length !== probeLabels.length * dim) throw new DataError(`identify: probes have ${probes.length / dim} rows but ${probeLabels.length} labels`);
  const probeId = Int32Array.from(probeLabels, (l, p) => {
    const i = idIndex.get(l);
    if (i === undefined) throw new DataError(`identify: probe ${p} has identity ${l}, which has no gallery image`);
    return i;
  });
  const maxRank = Math.max(5, o.maxRank ?? 10);
  const ranks = new Int32Array(probeLabels.length);
  const best = new Float32Array(ids.length);
  const nG = galleryLabels.length;
  await similarityBlocks(backend, probes, gallery, dim, (r0, rows, block) => {
    for (let r = 0; r < rows; r++) {
      best.fill(-Infinity);
      for (let g = 0; g < nG; g++) {
        const s = block[r * nG + g];
        if (s > best[galleryId[g]]) best[galleryId[g]] = s;
      }
      const own = best[probeId[r0 + r]];
      let higher = 0;
      for (let i = 0; i < ids.length; i++) if (best[i] > own) higher++;
      ranks[r0 + r] = higher + 1;
    }
  }, o);
  const cmc = new Array<number>(maxRank).fill(0);
  for (const rank of ranks) for (let k = rank; k <= maxRank; k++) cmc[k - 1]++;
  for (let k = 0; k < maxRank; k++) cmc[k] /= ranks.length;
  return { cmc, rank1: cmc[0], rank5: cmc[4], ranks };
}
