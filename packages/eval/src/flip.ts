/** Test-time flip fusion, as insightface's verification: normalize(emb(img) + emb(flip(img))). */
import { DataError } from '@fr/core';

/** Row-wise L2-normalised sum of two row-major n x dim embedding arrays. */
export function flipFuse(embeddings: ArrayLike<number>, flipped: ArrayLike<number>, dim: number): Float32Array {
  if (embeddings.length !== flipped.length || embeddings.length % dim !== 0) {
    throw new DataError(`flipFuse: ${embeddings.length} and ${flipped.length} values are not matching rows of ${dim}`);
  }
  const out = new Float32Array(embeddings.length);
  for (let r = 0; r < embeddings.length; r += dim) {
    let ss = 0;
    for (let t = 0; t < dim; t++) {
      const v = embeddings[r + t] + flipped[r + t];
      out[r + t] = v;
      ss += v * v;
    }
    // sklearn.preprocessing.normalize leaves zero rows as zeros.
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let t = 0; t < dim; t++) out[r + t] *= inv;
  }
  return out;
}

/** Mirrors an NCHW float32 batch left-right (the flipped input of flip fusion). */
export function flipHorizontalNCHW(batch: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  if (batch.length !== n * c * h * w) throw new DataError(`flipHorizontalNCHW: ${batch.length} values are not [${n}, ${c}, ${h}, ${w}]`);
  const out = new Float32Array(batch.length);
  for (let row = 0; row < n * c * h; row++) {
    const o = row * w;
    for (let x = 0; x < w; x++) out[o + x] = batch[o + w - 1 - x];
  }
  return out;
}
