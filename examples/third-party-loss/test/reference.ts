/** The float64 reference of QuadFace the tests and the shipped cases (cases/*.json) come from. */
import { createRng } from '@fr/core';

/**
 * A reference case in the golden format, computed here in float64 from the formula, independently
 * of the plugin: cosines, logits, softmax cross-entropy, and the chain rule by hand.
 */
export function referenceCase(B: number, D: number, C: number, s: number, m: number, q: number, seed: number) {
  const rng = createRng(seed);
  const x = Array.from({ length: B * D }, () => rng.normal());
  const w = Array.from({ length: C * D }, () => rng.normal());
  for (let j = 0; j < C; j++) {
    const n = Math.hypot(...w.slice(j * D, (j + 1) * D));
    for (let k = 0; k < D; k++) w[j * D + k] /= n; // unit rows, as the golden files
  }
  const labels = Array.from({ length: B }, () => rng.int(C));
  const gx = new Array(B * D).fill(0);
  const gw = new Array(C * D).fill(0); // gradient on the normalised rows first
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const xb = x.slice(b * D, (b + 1) * D);
    const nx = Math.hypot(...xb);
    const xn = xb.map((v) => v / nx);
    const cos = Array.from({ length: C }, (_, j) => xn.reduce((a, v, k) => a + v * w[j * D + k], 0));
    const y = labels[b];
    const logit = cos.map((c, j) => (j === y ? s * (c - m - q * (1 - c) ** 2) : s * c));
    const slope = cos.map((c, j) => (j === y ? s * (1 + 2 * q * (1 - c)) : s));
    const mx = Math.max(...logit);
    const lse = mx + Math.log(logit.reduce((a, l) => a + Math.exp(l - mx), 0));
    loss += (lse - logit[y]) / B;
    const dcos = logit.map((l, j) => ((Math.exp(l - lse) - (j === y ? 1 : 0)) * slope[j]) / B);
    const gxn = xn.map((_, k) => dcos.reduce((a, d, j) => a + d * w[j * D + k], 0));
    const dot = gxn.reduce((a, g, k) => a + g * xn[k], 0);
    for (let k = 0; k < D; k++) gx[b * D + k] = (gxn[k] - dot * xn[k]) / nx;
    for (let j = 0; j < C; j++) for (let k = 0; k < D; k++) gw[j * D + k] += dcos[j] * xn[k];
  }
  // Through the row normalisation of W at unit rows: g - (g.w) w.
  for (let j = 0; j < C; j++) {
    const dot = gw.slice(j * D, (j + 1) * D).reduce((a, g, k) => a + g * w[j * D + k], 0);
    for (let k = 0; k < D; k++) gw[j * D + k] -= dot * w[j * D + k];
  }
  return {
    name: `quadface-${B}x${D}x${C}`,
    loss: 'quadface',
    params: { s, m, q },
    source: 'float64 formula in this test',
    shape: { batch: B, dim: D, classes: C },
    inputs: { embeddings: x.map(Math.fround), weights: w.map(Math.fround), labels },
    expected: { loss, gradEmbeddings: gx, gradWeights: gw },
    tolerance: { rtol: 5e-4, atol: 1e-6 },
  };
}

/** The reference cases this package ships in cases/ (for `fr conformance cases --plugin ...`). */
export const shippedCases = () => [referenceCase(6, 8, 5, 32, 0.2, 0.1, 1), referenceCase(8, 16, 40, 64, 0.35, 0.3, 3)];
