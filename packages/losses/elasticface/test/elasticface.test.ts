import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRng, parseLossParams, tensor, tidy, type Backend } from '@fr/core';
import { lossGradCheck } from '@fr/core/testing';
import { elasticArcTransform, elasticCosTransform, elasticface } from '../src/index.js';
import { backends } from '@fr/test-kit';

test('target: s cos(theta + m_b) with the margin from the row context; exact slope', () => {
  const t = elasticArcTransform(64);
  const row = { target: 0.3, context: 0.45 };
  expect(t.target(0.3, t.uniforms, row)).toBeCloseTo(64 * Math.cos(Math.acos(0.3) + 0.45), 10);
  const h = 1e-6;
  expect(t.targetGrad(0.3, t.uniforms, row)).toBeCloseTo((t.target(0.3 + h, t.uniforms, row) - t.target(0.3 - h, t.uniforms, row)) / (2 * h), 4);
  expect(Number.isFinite(t.targetGrad(1, t.uniforms, row))).toBe(true);
});

test('ElasticCosFace clamps every cosine to [-1, 1] as the official code; the slope is torch.clamp\'s', () => {
  const t = elasticCosTransform(64);
  const row = { target: 1.0002, context: 0.35 };
  expect(t.target(1.0002, t.uniforms, row)).toBeCloseTo(64 * (1 - 0.35), 10);
  expect(t.other(-1.0002, t.uniforms, row)).toBe(-64);
  expect(t.targetGrad(1.0002, t.uniforms, row)).toBe(0);
  expect(t.otherGrad(-1.0002, t.uniforms, row)).toBe(0);
  expect(t.targetGrad(1, t.uniforms, row)).toBe(64);
  expect(t.otherGrad(0.2, t.uniforms, row)).toBe(64);
});

describe.each(backends)('elasticface on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('with sigma 0 it is ArcFace/CosFace with a fixed margin: finite differences agree', async () => {
    for (const base of ['arcface', 'cosface'] as const) {
      const r = await lossGradCheck(elasticface, { backend, params: { base, sigma: 0, s: 8 }, batch: 3, dim: 5, classes: 4, seed: 3 });
      for (const c of r.checks) expect(c.maxError, `${base} ${JSON.stringify(c)}`).toBeLessThanOrEqual(c.allowed);
    }
  });

  test('margins are redrawn every step (same inputs, different losses) from a seeded generator', async () => {
    const make = () => elasticface.createHead({ backend, numClasses: 4, embeddingDim: 5, params: parseLossParams(elasticface, { sigma: 0.2 }), rng: createRng(9) });
    const x = tensor(backend, Float32Array.from({ length: 15 }, (_, i) => Math.cos(i)), [3, 5]);
    const labels = Int32Array.from([0, 1, 2]);
    const run = async (head: ReturnType<typeof make>) => {
      const out: number[] = [];
      for (let i = 0; i < 2; i++) {
        const l = tidy(() => head.forward(x, labels));
        out.push(await l.item());
        l.dispose();
      }
      return out;
    };
    const [a, b2] = [await run(make()), await run(make())];
    expect(a[0]).not.toBeCloseTo(a[1], 3);
    expect(b2).toEqual(a);
  });

  test('given margins replace the draws: equal margins m give the sigma-0 head with mean m, on both bases', async () => {
    const x = tensor(backend, Float32Array.from({ length: 15 }, (_, i) => Math.sin(i + 1)), [3, 5]);
    const labels = Int32Array.from([2, 0, 1]);
    for (const base of ['arcface', 'cosface'] as const) {
      const make = (params: object, seed: number) => elasticface.createHead({ backend, numClasses: 4, embeddingDim: 5, params: parseLossParams(elasticface, params), rng: createRng(seed) });
      const given = make({ base, sigma: 0.3 }, 1), fixed = make({ base, sigma: 0, m: 0.4 }, 2);
      expect(given.takes).toEqual(['margins']);
      backend.write(given.parameters[0].tensor.buffer(), await fixed.parameters[0].tensor.data());
      const value = async (h: typeof given, margins?: Float32Array) => {
        const l = tidy(() => h.forward(x, labels, margins ? { margins } : undefined));
        const v = await l.item();
        l.dispose();
        return v;
      };
      const margins = Float32Array.of(0.4, 0.4, 0.4);
      const want = await value(fixed);
      expect(await value(given, margins)).toBeCloseTo(want, 5);
      expect(await value(given, margins)).toBeCloseTo(want, 5);
      expect(() => given.forward(x, labels, { margins: Float32Array.of(0.4) })).toThrow(/elasticface: 1 margins given for a batch of 3/);
      given.dispose();
      fixed.dispose();
    }
    x.dispose();
  });

  test('with given per-row margins the gradient is exact (finite differences)', async () => {
    for (const base of ['arcface', 'cosface'] as const) {
      const r = await lossGradCheck(elasticface, { backend, params: { base, s: 8 }, batch: 3, dim: 5, classes: 4, seed: 5, inputs: { margins: Float32Array.of(0.3, 0.55, 0.45) } });
      for (const c of r.checks) expect(c.maxError, `${base} ${JSON.stringify(c)}`).toBeLessThanOrEqual(c.allowed);
    }
  });
});
