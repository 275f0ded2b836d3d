import { expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { createRng } from '@fr/core';
import { formatLossConformance, lossGradCheck, parseLossCase, runLossConformance } from '@fr/core/testing';
import { quadface } from '../src/index.js';

/**
 * A reference case in the golden format, computed here in float64 from the formula, independently
 * of the plugin: cosines, logits, softmax cross-entropy, and the chain rule by hand.
 */
function referenceCase(B: number, D: number, C: number, s: number, m: number, q: number, seed: number) {
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

test('quadface passes the conformance kit on its own reference cases', async () => {
  const backend = createCpuBackend();
  const cases = [referenceCase(6, 8, 5, 32, 0.2, 0.1, 1), referenceCase(16, 32, 200, 64, 0.35, 0.3, 2)].map((c) =>
    parseLossCase(JSON.parse(JSON.stringify(c)), c.name),
  );
  const results = await runLossConformance(cases, { losses: [quadface], backend });
  const report = formatLossConformance(results);
  expect(results.every((r) => r.pass), report).toBe(true);
  expect(report.split('\n').at(-1)).toBe('2 passed, 0 failed');
  expect(results[0].value).toBeCloseTo(cases[0].expected.loss, 4);
});

test('a wrong plugin fails the same cases: q is not ignored by the check', async () => {
  const backend = createCpuBackend();
  const c = referenceCase(6, 8, 5, 32, 0.2, 0.1, 1);
  const [r] = await runLossConformance([{ ...c, params: { s: 32, m: 0.2, q: 0 } }], { losses: [quadface], backend });
  expect(r.pass).toBe(false);
  expect(r.checks.loss!.pass).toBe(false);
});

test('the exact gradient agrees with finite differences', async () => {
  const r = await lossGradCheck(quadface, { backend: createCpuBackend(), params: { s: 8, q: 0.5 }, batch: 3, dim: 6, classes: 4 });
  for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
});
