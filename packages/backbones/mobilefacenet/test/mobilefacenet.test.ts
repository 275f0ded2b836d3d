import { describe, expect, test } from 'vitest';
import {
  backward, createRng, noGrad, parameterCount, restoreCheckpoint, sum, tensor, tidy, type Module,
} from '@fr/core';
import { createCpuBackend } from '@fr/backend-cpu';
import { checkBackboneCheckpoint } from '@fr/core/testing';
import { mobilefacenet, mobileFaceNetParameterCount, mobileFaceNetParams, type MobileFaceNetParams } from '../src/index.js';

const backend = createCpuBackend();
const build = (o: Partial<MobileFaceNetParams>, seed = 1): Module =>
  mobilefacenet.build({ backend, params: mobileFaceNetParams.parse(o), rng: createRng(seed) });

function randomInput(shape: number[], seed: number) {
  const rng = createRng(seed);
  return tensor(backend, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform() * 2 - 1), shape);
}

const all = (m: Module) => [...m.parameters, ...m.buffers];

describe('mbf (blocks 1-4-6-2, scale 2)', () => {
  test('has 2,059,520 parameters at 112x112 and 512-d, as insightface', () => {
    const m = build({});
    expect(parameterCount(m)).toBe(2_059_520);
    expect(mobileFaceNetParameterCount({})).toBe(2_059_520);
    m.dispose();
  });

  test('the schema-derived count follows the options (mbf_large, other sizes)', () => {
    for (const o of [{ blocks: [2, 8, 12, 4] as [number, number, number, number], scale: 4 }, { inputSize: 32, embeddingDim: 64, scale: 1 }]) {
      const m = build(o);
      expect(parameterCount(m)).toBe(mobileFaceNetParameterCount(o));
      m.dispose();
    }
  });

  test('tensor names, shapes and initialisation follow arcface_torch', async () => {
    const m = build({});
    const byName = new Map(m.parameters.map((p) => [p.name, p.tensor]));
    expect(byName.get('layers.0.layers.0.weight')!.shape).toEqual([128, 3, 3, 3]);
    expect(byName.get('layers.1.layers.0.weight')!.shape).toEqual([128, 2, 3, 3]); // groups=64
    expect(byName.get('layers.2.layers.1.layers.0.weight')!.shape).toEqual([128, 1, 3, 3]); // depthwise
    expect(byName.get('layers.3.layers.3.layers.2.layers.0.weight')!.shape).toEqual([128, 128, 1, 1]);
    expect(byName.get('layers.4.layers.0.layers.0.weight')!.shape).toEqual([256, 128, 1, 1]);
    expect(byName.get('layers.5.layers.5.layers.1.layers.2.weight')!.shape).toEqual([256]); // PReLU
    expect(byName.get('conv_sep.layers.0.weight')!.shape).toEqual([512, 256, 1, 1]);
    expect(byName.get('features.layers.0.layers.0.weight')!.shape).toEqual([512, 1, 7, 7]);
    expect(byName.get('features.layers.2.weight')!.shape).toEqual([512, 512]);
    expect(byName.has('features.layers.2.bias')).toBe(false);
    expect(byName.get('features.layers.3.weight')!.requiresGrad).toBe(true);
    expect(m.buffers.map((b) => b.name)).toContain('features.layers.3.running_var');
    // kaiming_normal(fan_out, relu): std sqrt(2 / (out * k * k)).
    const w = Array.from(await byName.get('layers.4.layers.0.layers.0.weight')!.data());
    const std = Math.sqrt(w.reduce((a, b) => a + b * b, 0) / w.length);
    expect(std).toBeCloseTo(Math.sqrt(2 / 256), 2);
    m.dispose();
  });

  test('maps 112x112 RGB to 512-d embeddings', async () => {
    const m = build({});
    const y = noGrad(() => m.forward(randomInput([1, 3, 112, 112], 2), { training: false }));
    expect(y.shape).toEqual([1, 512]);
    expect(Array.from(await y.data()).every(Number.isFinite)).toBe(true);
    m.dispose();
  });
});

describe('training', () => {
  const small = { inputSize: 32, embeddingDim: 32 };

  test('forward and backward reach every parameter; train and eval differ', async () => {
    const m = build(small);
    const x = randomInput([4, 3, 32, 32], 5);
    const y = tidy(() => {
      const out = m.forward(x, { training: true });
      backward(sum(out));
      return out;
    });
    expect(y.shape).toEqual([4, 32]);
    for (const p of m.parameters) expect(p.tensor.grad, p.name).not.toBeNull();
    const e = await noGrad(() => m.forward(x, { training: false })).data();
    const t = await y.data();
    expect(Math.max(...Array.from(t, (v, i) => Math.abs(v - e[i])))).toBeGreaterThan(1e-3);
    m.dispose();
  });

  test('a checkpoint loads back bit-exactly; another architecture is refused by name', async () => {
    const { bytes, mismatched, sameEmbeddings } = await checkBackboneCheckpoint(mobilefacenet, { backend, params: small });
    expect(mismatched).toEqual([]);
    expect(sameEmbeddings).toBe(true);
    const large = build({ ...small, blocks: [2, 8, 12, 4], scale: 4 });
    expect(() => restoreCheckpoint(bytes, all(large))).toThrow(/tensor layers\.0\.layers\.0\.weight has shape \[128, 3, 3, 3\], this model needs \[256, 3, 3, 3\]/);
    const bigger = build({ inputSize: 48, embeddingDim: 32 });
    expect(() => restoreCheckpoint(bytes, all(bigger))).toThrow(/tensor features\.layers\.0\.layers\.0\.weight has shape \[512, 1, 2, 2\], this model needs \[512, 1, 3, 3\]/);
    for (const m of [large, bigger]) m.dispose();
  });

  test('schema defaults are mbf', () => {
    expect(mobileFaceNetParams.parse({})).toEqual({ inputSize: 112, embeddingDim: 512, blocks: [1, 4, 6, 2], scale: 2 });
    expect(mobileFaceNetParams.safeParse({ inputSize: 100 }).success).toBe(false);
    expect(mobilefacenet.inputShape(mobileFaceNetParams.parse({ inputSize: 64 }))).toEqual([3, 64, 64]);
  });
});
