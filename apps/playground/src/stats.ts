/** Statistics of an embedding against its class centres, computed on the host from read-back values. */

export interface Spread {
  /** Mean angle (degrees) of each class's samples to the direction of their class weight. */
  perClass: number[];
  /** Mean of perClass. */
  mean: number;
  /** Fraction of samples whose nearest class direction (largest cosine) is their own. */
  accuracy: number;
  /** Smallest angle (degrees) between two class directions: how far apart the centres sit. */
  minCentreAngle: number;
}

/** Rows of a [rows, dim] row-major matrix scaled to unit length (a zero row stays zero). */
export function normalizeRows(x: Float32Array | readonly number[], rows: number, dim: number): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let n = 0;
    for (let d = 0; d < dim; d++) n += x[r * dim + d] ** 2;
    const inv = n > 0 ? 1 / Math.sqrt(n) : 0;
    for (let d = 0; d < dim; d++) out[r * dim + d] = x[r * dim + d] * inv;
  }
  return out;
}

const angle = (c: number) => (Math.acos(Math.min(1, Math.max(-1, c))) * 180) / Math.PI;

/**
 * The angular spread the X2-Softmax paper reports: per class, the mean angle between each sample's
 * normalised embedding and its class centre, taken as the normalised class weight.
 */
export function angularSpread(embeddings: Float32Array, labels: Int32Array, weights: Float32Array, numClasses: number, dim: number): Spread {
  const n = labels.length;
  const e = normalizeRows(embeddings, n, dim);
  const w = normalizeRows(weights, numClasses, dim);
  const sum = new Float64Array(numClasses);
  const count = new Float64Array(numClasses);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = -Infinity, bestClass = -1;
    for (let c = 0; c < numClasses; c++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += e[i * dim + d] * w[c * dim + d];
      if (dot > best) { best = dot; bestClass = c; }
      if (c === labels[i]) { sum[c] += angle(dot); count[c]++; }
    }
    if (bestClass === labels[i]) correct++;
  }
  const perClass = Array.from(sum, (s, c) => (count[c] ? s / count[c] : NaN));
  const present = perClass.filter((v) => !Number.isNaN(v));
  let minCentreAngle = 180;
  for (let a = 0; a < numClasses; a++) {
    for (let b = a + 1; b < numClasses; b++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += w[a * dim + d] * w[b * dim + d];
      minCentreAngle = Math.min(minCentreAngle, angle(dot));
    }
  }
  return { perClass, mean: present.reduce((a, b) => a + b, 0) / (present.length || 1), accuracy: correct / (n || 1), minCentreAngle };
}
