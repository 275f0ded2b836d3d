import { describe, expect, test } from 'vitest';
import {
  backward, createRng, noGrad, parameterCount, restoreCheckpoint, sum, tensor, tidy, type Module,
} from '@fr/core';
import { createCpuBackend } from '@fr/backend-cpu';
import { checkBackboneCheckpoint } from '@fr/core/testing';
import { iresnet, iresnetParameterCount, iresnetParams, type IResNetParams } from '../src/index.js';

const backend = createCpuBackend();
const build = (o: Partial<IResNetParams>, seed = 1): Module =>
  iresnet.build({ backend, params: iresnetParams.parse(o), rng: createRng(seed) });

function randomInput(shape: number[], seed: number) {
  const rng = createRng(seed);
  const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform() * 2 - 1);
  return tensor(backend, data, shape);
}

/** PyTorch's sum(p.numel() for p in model.parameters()) for 112x112 input and 512-d embeddings. */
const REFERENCE_COUNTS = { 18: 24_025_600, 34: 34_139_328, 50: 43_590_848, 100: 65_156_160 } as const;

describe('parameter counts (112x112, 512-d) equal insightface', () => {
  for (const [depth, count] of Object.entries(REFERENCE_COUNTS)) {
    test(`iresnet${depth}: ${count}`, () => {
      const d = Number(depth) as 18 | 34 | 50 | 100;
      expect(iresnetParameterCount({ depth: d })).toBe(count);
      const m = build({ depth: d });
      // The count includes the frozen feature scale (a parameter without gradient, as in
      // PyTorch) and leaves out the running statistics (buffers).
      expect(parameterCount(m)).toBe(count);
      expect(m.buffers.reduce((n, b) => n + b.tensor.size, 0)).toBeGreaterThan(0);
      m.dispose();
    });
  }
  test('the schema-derived count follows the options', () => {
    const o = { depth: 18 as const, inputSize: 32, width: 0.25, embeddingDim: 32 };
    const m = build(o);
    expect(parameterCount(m)).toBe(iresnetParameterCount(o));
    m.dispose();
  });
});

describe('structure', () => {
  test('tensor names, shapes and initialisation follow arcface_torch', async () => {
    const m = build({ depth: 18 });
    const names = m.parameters.map((p) => p.name);
    expect(names.slice(0, 3)).toEqual(['conv1.weight', 'bn1.weight', 'bn1.bias']);
    for (const n of ['layer1.0.bn1.weight', 'layer1.0.conv1.weight', 'layer1.0.prelu.weight', 'layer1.0.conv2.weight', 'layer1.0.bn3.bias',
      'layer1.0.downsample.0.weight', 'layer1.0.downsample.1.weight', 'layer4.1.conv2.weight', 'bn2.weight', 'fc.weight', 'fc.bias',
      'features.weight', 'features.bias']) {
      expect(names).toContain(n);
    }
    expect(names).not.toContain('layer1.1.downsample.0.weight');
    const buffers = m.buffers.map((b) => b.name);
    expect(buffers).toContain('bn1.running_mean');
    expect(buffers).toContain('layer3.1.bn2.running_var');
    expect(buffers).toContain('features.running_var');
    const byName = new Map(m.parameters.map((p) => [p.name, p.tensor]));
    expect(byName.get('layer2.0.conv2.weight')!.shape).toEqual([128, 128, 3, 3]);
    expect(byName.get('layer2.0.downsample.0.weight')!.shape).toEqual([128, 64, 1, 1]);
    expect(byName.get('fc.weight')!.shape).toEqual([512, 512 * 7 * 7]);
    // Frozen unit scale of the feature BN.
    const fw = byName.get('features.weight')!;
    expect(fw.requiresGrad).toBe(false);
    expect(Array.from(await fw.data()).every((v) => v === 1)).toBe(true);
    // Convolutions ~ N(0, 0.1).
    const w = Array.from(await byName.get('layer3.0.conv1.weight')!.data());
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(std).toBeCloseTo(0.1, 2);
    // PReLU slopes start at 0.25; BN scales at 1.
    expect((await byName.get('layer1.0.prelu.weight')!.data())[0]).toBeCloseTo(0.25, 7);
    expect((await byName.get('layer1.0.bn2.weight')!.data())[0]).toBe(1);
    m.dispose();
    const z = build({ depth: 18, inputSize: 16, width: 0.125, zeroInitResidual: true });
    expect((await z.parameters.find((p) => p.name === 'layer1.0.bn2.weight')!.tensor.data())[0]).toBe(0);
    z.dispose();
  });

  test('iresnet18 maps 112x112 RGB to 512-d embeddings', async () => {
    const m = build({ depth: 18 });
    const y = noGrad(() => m.forward(randomInput([1, 3, 112, 112], 2), { training: false }));
    expect(y.shape).toEqual([1, 512]);
    expect(Array.from(await y.data()).every(Number.isFinite)).toBe(true);
    m.dispose();
  });

  test('a wrongly sized input fails naming the layer and the expected shape', () => {
    const m = build({ depth: 18, inputSize: 32, width: 0.125, embeddingDim: 8 });
    expect(() => noGrad(() => m.forward(randomInput([1, 3, 64, 64], 3), { training: false }))).toThrow(/linear fc: expected input \[N, 256\]/);
    m.dispose();
  });
});

describe('training', () => {
  const small = { depth: 18 as const, inputSize: 32, width: 0.25, embeddingDim: 16, dropout: 0.2 };

  test('forward and backward reach every trainable parameter; train and eval differ', async () => {
    const m = build(small);
    const x = randomInput([4, 3, 32, 32], 5);
    const before = await m.buffers.find((b) => b.name === 'bn1.running_mean')!.tensor.data();
    const yTrain = tidy(() => {
      const y = m.forward(x, { training: true, seed: 1 });
      backward(sum(y));
      return y;
    });
    expect(yTrain.shape).toEqual([4, 16]);
    for (const p of m.parameters) {
      if (p.name === 'features.weight') expect(p.tensor.grad, p.name).toBeNull();
      else expect(p.tensor.grad, p.name).not.toBeNull();
    }
    const after = await m.buffers.find((b) => b.name === 'bn1.running_mean')!.tensor.data();
    expect(Array.from(after)).not.toEqual(Array.from(before));
    const e1 = await noGrad(() => m.forward(x, { training: false })).data();
    const e2 = await noGrad(() => m.forward(x, { training: false })).data();
    expect(Array.from(e1)).toEqual(Array.from(e2));
    const t = await yTrain.data();
    expect(Math.max(...t.map((v, i) => Math.abs(v - e1[i])))).toBeGreaterThan(1e-3);
    // Dropout: two training passes with different seeds differ, the same seed repeats.
    const d1 = await noGrad(() => m.forward(x, { training: true, seed: 7 })).data();
    const d2 = await noGrad(() => m.forward(x, { training: true, seed: 8 })).data();
    expect(Array.from(d1)).not.toEqual(Array.from(d2));
    m.dispose();
  });

  test('a checkpoint loads back bit-exactly; another architecture is refused by name', async () => {
    const { bytes, mismatched, sameEmbeddings } = await checkBackboneCheckpoint(iresnet, { backend, params: small });
    expect(mismatched).toEqual([]);
    expect(sameEmbeddings).toBe(true);

    const wider = build({ ...small, width: 0.5 });
    expect(() => restoreCheckpoint(bytes, [...wider.parameters, ...wider.buffers])).toThrow(
      /tensor conv1\.weight has shape \[16, 3, 3, 3\], this model needs \[32, 3, 3, 3\]/,
    );
    const deeper = build({ ...small, depth: 34 });
    expect(() => restoreCheckpoint(bytes, [...deeper.parameters, ...deeper.buffers])).toThrow(/tensor layer1\.2\.bn1\.weight is missing/);
    for (const m of [wider, deeper]) m.dispose();
  });

  test('the schema rejects unsupported options', () => {
    expect(iresnetParams.safeParse({ depth: 42 }).success).toBe(false);
    expect(iresnetParams.safeParse({ inputSize: 100 }).success).toBe(false);
    expect(iresnetParams.parse({})).toEqual({ depth: 50, inputSize: 112, embeddingDim: 512, dropout: 0, width: 1, zeroInitResidual: false });
    expect(iresnet.inputShape(iresnetParams.parse({}))).toEqual([3, 112, 112]);
    expect(iresnet.embeddingDim(iresnetParams.parse({ embeddingDim: 256 }))).toBe(256);
  });
});
