import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, createRng, parseLossParams, tensor, tidy, type Backend } from '@fr/core';
import { centralDifferences, expectClose, lossGradCheck } from '@fr/core/testing';
import { officialArcTransform, subcenterArcface, subcenterArcfaceParams } from '../src/index.js';
import { backends } from '@fr/test-kit';

interface Problem {
  B: number;
  D: number;
  C: number;
  K: number;
  x: Float64Array;
  w: Float64Array;
  labels: Int32Array;
}

type Mode = 'detached' | 'exact';
const S = 64, M = 0.5;

/** ArcFace target logit in float64: opensphere's detached form, or the official arccos, + m, cos (no th/mm fallback). */
function arcTarget(c: number, mode: Mode): number {
  if (mode === 'detached') {
    const theta = Math.acos(Math.min(Math.max(c, -1 + 1e-5), 1 - 1e-5));
    return S * Math.cos(Math.min(Math.max(theta + M, 1e-5), 3.14159));
  }
  return S * Math.cos(Math.acos(c) + M);
}

/** max over sub-centers, then ArcFace and the mean cross-entropy. `offsets` freezes a detached margin. */
function reference(p: Problem, mode: Mode, offsets?: number[]) {
  const { B, D, C, K, x, w, labels } = p;
  let loss = 0;
  const used: number[] = [];
  for (let b = 0; b < B; b++) {
    const xb = x.subarray(b * D, (b + 1) * D);
    const nx = Math.hypot(...xb);
    const cos = Array.from({ length: C }, (_, c) => {
      let best = -Infinity;
      for (let k = 0; k < K; k++) {
        const wr = w.subarray((c * K + k) * D, (c * K + k + 1) * D);
        let dot = 0;
        for (let d = 0; d < D; d++) dot += xb[d] * wr[d];
        best = Math.max(best, dot / (nx * Math.hypot(...wr)));
      }
      return best;
    });
    const y = labels[b];
    const detachedOther = (c: number) => S * Math.min(Math.max(c, -1 + 1e-5), 1 - 1e-5);
    const logits = cos.map((c, j) => {
      if (j !== y) return mode === 'detached' ? detachedOther(c) : S * c;
      if (offsets) return S * c + offsets[b];
      return arcTarget(c, mode);
    });
    used.push(arcTarget(cos[y], mode) - S * cos[y]);
    const mx = Math.max(...logits);
    loss += (mx + Math.log(logits.reduce((a, l) => a + Math.exp(l - mx), 0)) - logits[y]) / B;
  }
  return { loss, offsets: used };
}

/** Central differences; a detached margin is held at its value (it is a constant for the gradient). */
function numericGrad(p: Problem, mode: Mode, which: 'x' | 'w'): Promise<number[]> {
  const offsets = mode === 'detached' ? reference(p, mode).offsets : undefined;
  return centralDifferences(p[which], () => reference(p, mode, offsets).loss, 1e-5);
}

function problem(K: number, seed: number): Problem {
  const rng = createRng(seed);
  const B = 5, D = 6, C = 4;
  // float32-representable inputs, so the head and the reference see the same numbers.
  const x = Float64Array.from({ length: B * D }, () => Math.fround(rng.normal() * 3));
  const w = Float64Array.from({ length: C * K * D }, () => Math.fround(rng.normal()));
  return { B, D, C, K, x, w, labels: Int32Array.from({ length: B }, () => rng.int(C)) };
}

test('defaults: s 64, m 0.5, K 3, the official exact margin', () => {
  expect(subcenterArcfaceParams.parse({})).toEqual({ s: 64, m: 0.5, k: 3, gradient: 'exact' });
});

test('exact margin: no th/mm fallback past theta + m = pi, slope of cos(arccos(c) + m)', () => {
  const t = officialArcTransform(S, M);
  // c = -0.95: theta + m > pi, where the classic form would give c - m sin m instead.
  expect(t.target(-0.95, t.uniforms, { target: -0.95, context: 0 })).toBeCloseTo(S * Math.cos(Math.acos(-0.95) + M), 9);
  const h = 1e-6, row = { target: 0.3, context: 0 };
  expect(t.targetGrad(0.3, t.uniforms, row)).toBeCloseTo((t.target(0.3 + h, t.uniforms, row) - t.target(0.3 - h, t.uniforms, row)) / (2 * h), 4);
  expect(t.other(0.7, t.uniforms, row)).toBe(S * 0.7);
});

describe.each(backends)('subcenter-arcface on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  for (const mode of ['detached', 'exact'] as const) {
    for (const K of [1, 3]) {
      test(`${mode}, K = ${K}: loss and gradients match the float64 reference`, async () => {
        const p = problem(K, 11 + K);
        const head = subcenterArcface.createHead({
          backend, numClasses: p.C, embeddingDim: p.D, params: parseLossParams(subcenterArcface, { k: K, gradient: mode }), rng: createRng(1),
        });
        const [weight] = head.parameters;
        expect(weight.name).toBe('subcenter-arcface.weight');
        expect(weight.tensor.shape).toEqual([p.C * K, p.D]);
        backend.write(weight.tensor.buffer(), Float32Array.from(p.w));
        const x = tensor(backend, Float32Array.from(p.x), [p.B, p.D], { requiresGrad: true });
        const l = tidy(() => {
          const l = head.forward(x, p.labels);
          backward(l);
          return l;
        });
        const want = reference(p, mode).loss;
        expect(Math.abs((await l.item()) - want)).toBeLessThanOrEqual(5e-4 * Math.abs(want) + 1e-5);
        expectClose(await x.grad!.data(), await numericGrad(p, mode, 'x'), { rtol: 5e-3, atol: 1e-6 }, 'dL/dx');
        const gw = await weight.tensor.grad!.data();
        expectClose(gw, await numericGrad(p, mode, 'w'), { rtol: 5e-3, atol: 1e-6 }, 'dL/dW');
        if (K > 1) {
          // Only the arg-max sub-center of each class that some row scored gets a gradient.
          let zeroRows = 0;
          for (let r = 0; r < p.C * K; r++) if (gw.subarray(r * p.D, (r + 1) * p.D).every((v) => v === 0)) zeroRows++;
          expect(zeroRows).toBeGreaterThan(0);
        }
        l.dispose();
        x.dispose();
        head.dispose();
      });
    }
  }

  test('lossGradCheck with sub-centers: the default (official) gradient is the derivative of the forward', async () => {
    const r = await lossGradCheck(subcenterArcface, { backend, params: { s: 8, k: 3 }, subCenters: 3, batch: 4, dim: 5, classes: 3, seed: 7 });
    expect(r.checks.map((c) => c.wrt)).toEqual(['embeddings', 'weights']);
    for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
  });

  test('ties of the max: every tied sub-center gets the whole gradient (MXNet max), on every backend alike', async () => {
    const p = problem(2, 5);
    // Sub-centers 0 and 1 of class 1 are the same vector: every row's max over them is a tie.
    p.w.copyWithin(3 * p.D, 2 * p.D, 3 * p.D);
    const head = subcenterArcface.createHead({ backend, numClasses: p.C, embeddingDim: p.D, params: parseLossParams(subcenterArcface, { k: 2 }), rng: createRng(1) });
    const [weight] = head.parameters;
    backend.write(weight.tensor.buffer(), Float32Array.from(p.w));
    const x = tensor(backend, Float32Array.from(p.x), [p.B, p.D], { requiresGrad: true });
    tidy(() => {
      const l = head.forward(x, p.labels);
      backward(l);
      return l;
    }).dispose();
    const gw = await weight.tensor.grad!.data();
    const first = gw.slice(2 * p.D, 3 * p.D), second = gw.slice(3 * p.D, 4 * p.D);
    expect(first.some((v) => v !== 0)).toBe(true);
    expect(Array.from(second)).toEqual(Array.from(first));
    x.dispose();
    head.dispose();
  });
});
