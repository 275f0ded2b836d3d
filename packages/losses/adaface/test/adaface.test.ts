import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, parseLossParams, ShapeError, tensor, tidy, type Backend } from '@fr/core';
import { centralDifferences, expectClose } from '@fr/core/testing';
import { adaface, adafaceParams, adafaceTransform } from '../src/index.js';
import { backends } from '@fr/test-kit';

interface Problem {
  B: number;
  D: number;
  C: number;
  x: Float32Array;
  w: Float32Array;
  labels: Int32Array;
}

interface State {
  mean: number;
  std: number;
}

const P = { s: 64, m: 0.4, h: 0.333, alpha: 0.01, eps: 1e-3 };

/** The official head in float64: statistics, EMA, scaler, margins, mean cross-entropy. */
function reference(p: Problem, state: State, fixedScaler?: number[]) {
  const { B, D, C, x, w, labels } = p;
  const norms = Array.from({ length: B }, (_, b) => Math.hypot(...x.subarray(b * D, (b + 1) * D)));
  const safe = norms.map((n) => Math.min(Math.max(n, 0.001), 100));
  const mu = safe.reduce((a, v) => a + v, 0) / B;
  const sd = Math.sqrt(safe.reduce((a, v) => a + (v - mu) ** 2, 0) / (B - 1));
  const mean = mu * P.alpha + (1 - P.alpha) * state.mean;
  const std = sd * P.alpha + (1 - P.alpha) * state.std;
  const scaler = fixedScaler ?? safe.map((n) => Math.min(Math.max(((n - mean) / (std + P.eps)) * P.h, -1), 1));
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const xb = x.subarray(b * D, (b + 1) * D);
    const logits = Array.from({ length: C }, (_, j) => {
      const wj = w.subarray(j * D, (j + 1) * D);
      let dot = 0;
      for (let d = 0; d < D; d++) dot += xb[d] * wj[d];
      const cos = Math.min(Math.max(dot / (norms[b] * Math.hypot(...wj)), -1 + P.eps), 1 - P.eps);
      if (j !== labels[b]) return P.s * cos;
      const thetaM = Math.min(Math.max(Math.acos(cos) - P.m * scaler[b], P.eps), Math.PI - P.eps);
      return P.s * (Math.cos(thetaM) - (P.m + P.m * scaler[b]));
    });
    const mx = Math.max(...logits);
    loss += (mx + Math.log(logits.reduce((a, l) => a + Math.exp(l - mx), 0)) - logits[labels[b]]) / B;
  }
  return { loss, mean, std, scaler };
}

/** Central differences of the float64 reference with the (detached) scaler held fixed. */
function numericGrad(p: Problem, state: State, which: 'x' | 'w'): Promise<number[]> {
  const { scaler } = reference(p, state);
  // Perturb a float64 copy: float32 storage would round the step.
  const work = Float64Array.from(p[which]);
  return centralDifferences(work, () => reference({ ...p, [which]: work as unknown as Float32Array }, state, scaler).loss, 1e-4);
}

/** Embeddings with norms spread from 4 to 60 (scalers below -1, inside, above 1) and one row on its class. */
function problem(seed: number): Problem {
  const rng = createRng(seed);
  const B = 6, D = 8, C = 5;
  const w = Float32Array.from({ length: C * D }, () => rng.normal());
  for (let j = 0; j < C; j++) {
    const n = Math.hypot(...w.subarray(j * D, (j + 1) * D));
    for (let d = 0; d < D; d++) w[j * D + d] /= n;
  }
  const labels = Int32Array.from([0, 1, 2, 3, 4, 1]);
  const x = new Float32Array(B * D);
  const norms = [4, 12, 20, 28, 45, 60];
  for (let b = 0; b < B; b++) {
    const v = Array.from({ length: D }, () => rng.normal());
    // Row 5 points at its class: cos is clamped to 1 - eps and the theta clip binds.
    if (b === 5) for (let d = 0; d < D; d++) v[d] = w[labels[b] * D + d];
    const n = Math.hypot(...v);
    for (let d = 0; d < D; d++) x[b * D + d] = (v[d] / n) * norms[b];
  }
  return { B, D, C, x, w, labels };
}

test('defaults are the official ones', () => {
  expect(adafaceParams.parse({})).toEqual({ s: 64, m: 0.4, h: 0.333, t_alpha: 0.01 });
});

test('transform: angular part on theta, additive part subtracted, slope exact through acos', () => {
  const t = adafaceTransform(64, 0.4);
  const u = t.uniforms;
  for (const sc of [-1, -0.3, 0, 0.5, 1]) {
    const row = { target: NaN, context: sc };
    for (const c of [-0.95, -0.2, 0.3, 0.8]) {
      const thetaM = Math.min(Math.max(Math.acos(c) - 0.4 * sc, 1e-3), Math.PI - 1e-3);
      expect(t.target(c, u, row)).toBeCloseTo(64 * (Math.cos(thetaM) - 0.4 - 0.4 * sc), 10);
      const h = 1e-6;
      expect(t.targetGrad(c, u, row)).toBeCloseTo((t.target(c + h, u, row) - t.target(c - h, u, row)) / (2 * h), 3);
    }
  }
  // Beyond the cosine clamp, and where the theta clip binds, no gradient flows (as torch.clip).
  expect(t.targetGrad(0.9995, u, { target: NaN, context: 0 })).toBe(0);
  expect(t.targetGrad(0.99, u, { target: NaN, context: 1 })).toBe(0); // theta 0.14 < 0.4 + eps
  expect(t.targetGrad(-0.95, u, { target: NaN, context: -1 })).toBe(0); // theta + 0.4 > pi - eps
  expect(t.other(-1, u, { target: NaN, context: 0 })).toBeCloseTo(64 * (-1 + 1e-3), 10);
});

describe.each(backends)('adaface on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('two steps: loss, gradients and running statistics match the float64 reference', async () => {
    const p = problem(7);
    const head = adaface.createHead({ backend, numClasses: p.C, embeddingDim: p.D, params: parseLossParams(adaface, {}), rng: createRng(1) });
    const [weight] = head.parameters;
    backend.write(weight.tensor.buffer(), p.w);
    const [meanBuf, stdBuf] = head.buffers;
    expect([meanBuf.name, stdBuf.name]).toEqual(['adaface.batch_mean', 'adaface.batch_std']);
    expect(Array.from(await meanBuf.tensor.data())).toEqual([20]);
    // A tighter std than the initial 100 spreads the scalers over [-1, 1] and past both ends.
    backend.write(stdBuf.tensor.buffer(), Float32Array.of(5));
    let state: State = { mean: 20, std: 5 };
    for (let step = 0; step < 2; step++) {
      const want = reference(p, state);
      expect(Math.min(...want.scaler)).toBe(-1);
      expect(Math.max(...want.scaler)).toBe(1);
      weight.tensor.grad?.dispose();
      weight.tensor.grad = null;
      const x = tensor(backend, p.x, [p.B, p.D], { requiresGrad: true });
      const l = tidy(() => {
        const l = head.forward(x, p.labels);
        backward(l);
        return l;
      });
      expect(Math.abs((await l.item()) - want.loss)).toBeLessThanOrEqual(5e-4 * Math.abs(want.loss) + 1e-5);
      expect((await meanBuf.tensor.data())[0]).toBeCloseTo(want.mean, 4);
      expect((await stdBuf.tensor.data())[0]).toBeCloseTo(want.std, 4);
      expectClose(await x.grad!.data(), await numericGrad(p, state, 'x'), { rtol: 5e-3, atol: 1e-6 }, `step ${step} dL/dx`);
      expectClose(await weight.tensor.grad!.data(), await numericGrad(p, state, 'w'), { rtol: 5e-3, atol: 1e-6 }, `step ${step} dL/dW`);
      state = { mean: want.mean, std: want.std };
      l.dispose();
      x.dispose();
    }
    head.dispose();
  });

  test('a batch of one is refused: its standard deviation is undefined', () => {
    const head = adaface.createHead({ backend, numClasses: 3, embeddingDim: 4, params: parseLossParams(adaface, {}), rng: createRng(1) });
    const x = tensor(backend, [1, 2, 3, 4], [1, 4]);
    expect(() => tidy(() => head.forward(x, Int32Array.of(0)))).toThrow(ShapeError);
    x.dispose();
    head.dispose();
  });
});
