import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, parseLossParams, ShapeError, tensor, tidy, type Backend } from '@fr/core';
import { centralDifferences, lossGradCheck, worstDisagreement } from '@fr/core/testing';
import { magface, magfaceParams, magfaceTransform } from '../src/index.js';
import { backends } from '@fr/test-kit';

interface Problem {
  B: number;
  D: number;
  C: number;
  x: Float64Array;
  w: Float64Array;
  labels: Int32Array;
}

const P = { s: 64, l_a: 10, u_a: 110, l_m: 0.45, u_m: 0.8, lambda_g: 35 };

/**
 * MagLinear + MagLoss in float64: CE (mean) + lambda_g * mean(g(a)). `fixedMargins` holds the
 * margins constant, to show that the gradient through the margin is not negligible.
 */
function reference(p: Problem, easy: boolean, fixedMargins?: number[]) {
  const { B, D, C, x, w, labels } = p;
  let ce = 0, g = 0;
  const margins: number[] = [];
  for (let b = 0; b < B; b++) {
    const xb = x.subarray(b * D, (b + 1) * D);
    const norm = Math.hypot(...xb);
    const a = Math.min(Math.max(norm, P.l_a), P.u_a);
    const m = fixedMargins?.[b] ?? ((P.u_m - P.l_m) / (P.u_a - P.l_a)) * (a - P.l_a) + P.l_m;
    margins.push(m);
    g += (a / P.u_a ** 2 + 1 / a) / B;
    const logits = Array.from({ length: C }, (_, j) => {
      const wj = w.subarray(j * D, (j + 1) * D);
      let dot = 0;
      for (let d = 0; d < D; d++) dot += xb[d] * wj[d];
      const c = Math.min(Math.max(dot / (norm * Math.hypot(...wj)), -1), 1);
      if (j !== labels[b]) return P.s * c;
      const cm = c * Math.cos(m) - Math.sqrt(1 - c * c) * Math.sin(m);
      if (easy) return P.s * (c > 0 ? cm : c);
      return P.s * (c > Math.cos(Math.PI - m) ? cm : c - Math.sin(Math.PI - m) * m);
    });
    const mx = Math.max(...logits);
    ce += (mx + Math.log(logits.reduce((s, l) => s + Math.exp(l - mx), 0)) - logits[labels[b]]) / B;
  }
  return { loss: ce + P.lambda_g * g, margins };
}

/** Central differences of the float64 reference; `fixedMargins` holds the margins at those values. */
function numericGrad(p: Problem, easy: boolean, which: 'x' | 'w', fixedMargins?: number[]): Promise<number[]> {
  return centralDifferences(p[which], () => reference(p, easy, fixedMargins).loss, 1e-5);
}

/** Magnitudes 5 (below l_a), 30, 60, 90 and 130 (above u_a); targets on both sides of cos = 0. */
function problem(seed: number): Problem {
  const rng = createRng(seed);
  const B = 5, D = 6, C = 4;
  const w = Float64Array.from({ length: C * D }, () => Math.fround(rng.normal()));
  const labels = Int32Array.from([0, 1, 2, 3, 1]);
  const x = new Float64Array(B * D);
  [5, 30, 60, 90, 130].forEach((n, b) => {
    const v = Array.from({ length: D }, () => rng.normal());
    // Rows 1 and 3 lean towards their class (cos > 0, on the margin branch); others stay random.
    if (b === 1 || b === 3) for (let d = 0; d < D; d++) v[d] += 1.5 * w[labels[b] * D + d];
    const norm = Math.hypot(...v);
    for (let d = 0; d < D; d++) x[b * D + d] = Math.fround((v[d] / norm) * n);
  });
  return { B, D, C, x, w, labels };
}

/** The float32 gradients against the float64 differences. */
const TOLERANCE = { atol: 1e-5, rtol: 5e-3 };

test('defaults are the official ones', () => {
  expect(magfaceParams.parse({})).toEqual({ s: 64, l_a: 10, u_a: 110, l_m: 0.45, u_m: 0.8, lambda_g: 35, easy_margin: true });
  expect(() => magfaceParams.parse({ l_a: 50, u_a: 40 })).toThrow(/u_a must be greater than l_a/);
});

test('transform: slopes in cos and in the margin agree with differences of the logit', () => {
  for (const easy of [true, false]) {
    const t = magfaceTransform(64, easy);
    const h = 1e-6;
    for (const c of [-0.9, -0.3, 0.2, 0.7]) {
      for (const m of [0.45, 0.6, 0.8]) {
        const row = (mm: number) => ({ target: NaN, context: mm });
        const dz = (t.target(c + h, t.uniforms, row(m)) - t.target(c - h, t.uniforms, row(m))) / (2 * h);
        const dm = (t.target(c, t.uniforms, row(m + h)) - t.target(c, t.uniforms, row(m - h))) / (2 * h);
        expect(t.targetGrad(c, t.uniforms, row(m))).toBeCloseTo(dz, 3);
        expect(t.targetContextGrad!(c, t.uniforms, row(m))).toBeCloseTo(dm, 3);
        expect(t.otherContextGrad!(c, t.uniforms, row(m))).toBe(0);
      }
    }
  }
});

describe.each(backends)('magface on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  for (const easy of [true, false]) {
    test(`easy_margin ${easy}: loss and gradients (through the margin and the regulariser) match the float64 reference`, async () => {
      const p = problem(easy ? 5 : 6);
      const head = magface.createHead({ backend, numClasses: p.C, embeddingDim: p.D, params: parseLossParams(magface, { easy_margin: easy }), rng: createRng(1) });
      const [weight] = head.parameters;
      backend.write(weight.tensor.buffer(), Float32Array.from(p.w));
      const x = tensor(backend, Float32Array.from(p.x), [p.B, p.D], { requiresGrad: true });
      const l = tidy(() => {
        const l = head.forward(x, p.labels);
        backward(l);
        return l;
      });
      const want = reference(p, easy);
      expect(Math.abs((await l.item()) - want.loss)).toBeLessThanOrEqual(5e-4 * Math.abs(want.loss) + 1e-5);
      const gx = await x.grad!.data();
      const ex = worstDisagreement(gx, await numericGrad(p, easy, 'x'), TOLERANCE);
      expect(ex.maxError, `dL/dx: ${JSON.stringify(ex)}`).toBeLessThanOrEqual(ex.allowed);
      // Holding the margins fixed gives a visibly different gradient: the margin path matters.
      const frozen = worstDisagreement(gx, await numericGrad(p, easy, 'x', want.margins), TOLERANCE);
      expect(frozen.maxError).toBeGreaterThan(3 * ex.allowed);
      expect(ex.maxError).toBeLessThan(frozen.maxError / 100);
      const gw = await weight.tensor.grad!.data();
      const ew = worstDisagreement(gw, await numericGrad(p, easy, 'w'), TOLERANCE);
      expect(ew.maxError, `dL/dW: ${JSON.stringify(ew)}`).toBeLessThanOrEqual(ew.allowed);
      // Magnitudes outside [l_a, u_a] (rows 0 and 4) get no gradient from the magnitude itself:
      // what is left is tangential, orthogonal to x.
      for (const row of [0, 4]) {
        let radial = 0;
        for (let d = 0; d < p.D; d++) radial += gx[row * p.D + d] * p.x[row * p.D + d];
        expect(Math.abs(radial) / Math.hypot(...p.x.subarray(row * p.D, (row + 1) * p.D))).toBeLessThan(1e-4);
      }
      l.dispose();
      x.dispose();
      head.dispose();
    });
  }

  test('lossGradCheck (float32 differences) agrees with the tape at a small scale', async () => {
    const rng = createRng(21);
    const embeddings = Float32Array.from({ length: 3 * 5 }, () => rng.normal() * 12);
    const r = await lossGradCheck(magface, { backend, params: { s: 4, lambda_g: 5 }, batch: 3, dim: 5, classes: 4, embeddings, seed: 4, eps: 1e-2, rtol: 2e-2, atol: 1e-4 });
    for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
  });

  test('shape errors name the head', () => {
    const head = magface.createHead({ backend, numClasses: 3, embeddingDim: 4, params: parseLossParams(magface, {}), rng: createRng(1) });
    const x = tensor(backend, new Float32Array(6), [2, 3]);
    expect(() => tidy(() => head.forward(x, Int32Array.of(0, 1)))).toThrow(ShapeError);
    expect(() => tidy(() => head.forward(x, Int32Array.of(0, 1)))).toThrow(/magface: embeddings must be \[B, 4\]/);
    x.dispose();
    head.dispose();
  });
});
