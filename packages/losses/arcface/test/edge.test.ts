import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { backward, checkFinite, createRng, DataError, parseLossParams, tensor, tidy, type Backend } from '@fr/core';
import { checkFinite as checkFiniteFromTesting, lossGradCheck } from '@fr/core/testing';
import { arcface, SIN2_MIN } from '../src/index.js';
import { backends } from '@fr/test-kit';
import { arcfaceReference, type Problem } from './reference.js';

function randomProblem(B: number, D: number, C: number, seed: number): Problem {
  const rng = createRng(seed);
  return {
    B, D, C,
    x: Float32Array.from({ length: B * D }, () => rng.normal()),
    w: Float32Array.from({ length: C * D }, () => rng.normal()),
    labels: Int32Array.from({ length: B }, () => rng.int(C)),
  };
}

async function run(backend: Backend, p: Problem, params: Record<string, unknown>) {
  const head = arcface.createHead({ backend, numClasses: p.C, embeddingDim: p.D, params: parseLossParams(arcface, params), rng: createRng(1) });
  const weight = head.parameters[0].tensor;
  backend.write(weight.buffer(), p.w);
  const x = tensor(backend, p.x, [p.B, p.D], { requiresGrad: true });
  const loss = tidy(() => {
    const l = head.forward(x, p.labels);
    backward(l);
    return l;
  });
  const out = { loss: await loss.item(), gx: await x.grad!.data(), gw: await weight.grad!.data() };
  loss.dispose();
  x.dispose();
  head.dispose();
  return out;
}

const maxAbs = (a: ArrayLike<number>) => Math.max(0, ...Array.from(a, Math.abs));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(0, ...Array.from(a, (v, i) => Math.abs(v - b[i])));
const allFinite = (a: ArrayLike<number>) => Array.from(a).every(Number.isFinite);

describe.each(backends)('arcface edge cases on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  /** Embeddings equal to (sign times) their class weight: cos = +1 or -1 for the target. */
  function aligned(sign: 1 | -1): Problem {
    const p = randomProblem(3, 8, 5, 11);
    for (let r = 0; r < p.B; r++) for (let k = 0; k < p.D; k++) p.x[r * p.D + k] = sign * 2.5 * p.w[p.labels[r] * p.D + k];
    return p;
  }

  for (const gradient of ['detached', 'exact'] as const) {
    test(`${gradient}: cos = +1 gives a finite loss and gradient matching the float64 reference`, async () => {
      const p = aligned(1);
      const got = await run(backend, p, { gradient });
      const want = arcfaceReference(p, 64, 0.5, gradient);
      expect(got.loss).toBeCloseTo(want.loss, 3);
      expect(allFinite(got.gx) && allFinite(got.gw)).toBe(true);
      expect(maxDiff(got.gx, want.gx)).toBeLessThan(2e-3 * maxAbs(want.gx) + 1e-5);
    });

    test(`${gradient}: cos = -1 (theta + m > pi) follows the fallback of the rule`, async () => {
      const p = aligned(-1);
      const got = await run(backend, p, { gradient });
      const want = arcfaceReference(p, 64, 0.5, gradient);
      // The target logit is near -64 (detached: cos(3.14159)) or 64 (-1 - m sin m) (exact): a huge loss.
      expect(got.loss).toBeGreaterThan(100);
      expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-5 * want.loss);
      expect(allFinite(got.gx) && allFinite(got.gw)).toBe(true);
      expect(maxDiff(got.gx, want.gx)).toBeLessThan(2e-3 * maxAbs(want.gx) + 1e-5);
    });
  }

  test('exact: the slope at |cos| = 1 is bounded by the clamp of 1 - cos^2', async () => {
    const p = aligned(1);
    p.labels.fill(0);
    // One row whose target cosine is exactly 1 and which is otherwise unsure: p_y < 1.
    for (let k = 0; k < p.D; k++) p.x[k] = p.w[k];
    const got = await run(backend, p, { gradient: 'exact', s: 1 });
    expect(allFinite(got.gx) && allFinite(got.gw)).toBe(true);
    expect(maxAbs(got.gw)).toBeLessThan((1 + Math.sin(0.5) / Math.sqrt(SIN2_MIN)) * 10);
  });

  test('one class: the loss and every gradient are zero', async () => {
    const p = randomProblem(4, 8, 1, 5);
    for (const gradient of ['detached', 'exact']) {
      const got = await run(backend, p, { gradient });
      expect(got.loss).toBe(0);
      expect(maxAbs(got.gx)).toBe(0);
      expect(maxAbs(got.gw)).toBe(0);
    }
  });

  test('a batch of one matches the float64 reference', async () => {
    const p = randomProblem(1, 16, 7, 9);
    const got = await run(backend, p, {});
    const want = arcfaceReference(p, 64, 0.5, 'detached');
    expect(got.loss).toBeCloseTo(want.loss, 4);
    expect(maxDiff(got.gx, want.gx)).toBeLessThan(1e-3 * maxAbs(want.gx) + 1e-6);
  });

  test('5000 classes (far more than a workgroup) match the float64 reference', async () => {
    const p = randomProblem(3, 8, 5000, 21);
    for (const gradient of ['detached', 'exact'] as const) {
      const got = await run(backend, p, { gradient, m: 0.3 });
      const want = arcfaceReference(p, 64, 0.3, gradient);
      expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-4 * want.loss);
      expect(maxDiff(got.gx, want.gx)).toBeLessThan(1e-3 * maxAbs(want.gx) + 1e-6);
    }
  });

  test('labels out of range are a DataError naming the row', async () => {
    const p = randomProblem(3, 8, 5, 2);
    p.labels[1] = 5;
    await expect(run(backend, p, {})).rejects.toThrow(DataError);
    await expect(run(backend, p, {})).rejects.toThrow(/label 5 at row 1 is outside \[0, 5\)/);
    p.labels[1] = -1;
    await expect(run(backend, p, {})).rejects.toThrow(/label -1 at row 1/);
  });

  // The embeddings are what a trainer must check: WGSL min/max/clamp may turn NaN into a bound, so
  // on WebGPU a NaN embedding can yield a finite (wrong) loss. On the CPU the NaN reaches the loss.
  test('NaN in the embeddings: checkFinite names the element (and on the CPU the NaN loss is caught)', async () => {
    const p = randomProblem(3, 8, 5, 2);
    p.x[1 * 8 + 2] = NaN;
    const x = tensor(backend, p.x, [3, 8], { name: 'embeddings' });
    await expect(checkFinite(x, 'embeddings')).rejects.toThrow(DataError);
    await expect(checkFinite(x, 'embeddings')).rejects.toThrow(/embeddings: non-finite value NaN at row 1, column 2/);
    const head = arcface.createHead({ backend, numClasses: 5, embeddingDim: 8, params: parseLossParams(arcface, {}), rng: createRng(1) });
    const loss = tidy(() => head.forward(x, p.labels));
    if (b.name === 'cpu') await expect(checkFinite(loss, 'loss')).rejects.toThrow(/loss: non-finite value NaN/);
    // Finite inputs pass.
    await expect(checkFinite(tensor(backend, p.w, [5, 8]), 'weights')).resolves.toBeUndefined();
    // @fr/core/testing keeps re-exporting it for older imports.
    expect(checkFiniteFromTesting).toBe(checkFinite);
    loss.dispose();
    x.dispose();
    head.dispose();
  });

  test('exact gradient agrees with finite differences (embeddings and weights)', async () => {
    const r = await lossGradCheck(arcface, { backend, params: { gradient: 'exact', s: 8, m: 0.5 }, batch: 3, dim: 6, classes: 4, seed: 4 });
    expect(r.checks.map((c) => c.wrt)).toEqual(['embeddings', 'weights']);
    for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
    expect(r.passed).toBe(true);
  });

  test('the detached rule is not the derivative of its forward (finite differences disagree)', async () => {
    const r = await lossGradCheck(arcface, { backend, params: { s: 8, m: 0.5 }, batch: 3, dim: 6, classes: 4, seed: 4, wrt: ['embeddings'] });
    expect(r.passed).toBe(false);
  });
});
