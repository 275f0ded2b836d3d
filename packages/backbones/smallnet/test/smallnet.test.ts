import { describe, expect, test } from 'vitest';
import {
  backward, ConfigError, createRng, l2normalize, matmul, mean, noGrad, parameterCount, restoreCheckpoint,
  sgd, sum, tensor, tidy, unary, type Module,
} from '@fr/core';
import { createCpuBackend } from '@fr/backend-cpu';
import { checkBackboneCheckpoint } from '@fr/core/testing';
import { smallnet, smallNetParameterCount, smallNetParams, type SmallNetParams } from '../src/index.js';

const backend = createCpuBackend();
const build = (o: Partial<SmallNetParams>, seed = 1): Module =>
  smallnet.build({ backend, params: smallNetParams.parse(o), rng: createRng(seed) });
const all = (m: Module) => [...m.parameters, ...m.buffers];

function randomInput(shape: number[], seed: number) {
  const rng = createRng(seed);
  return tensor(backend, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform() * 2 - 1), shape);
}

describe('structure', () => {
  test('default: 32x32 -> 128-d, 16-32-64-128 channels, counted parameters', () => {
    const m = build({});
    // convs 16*27 + 32*144 + 64*288 + 128*576, 3 per channel of BN+PReLU, bn2, fc 512->128 + bias, features BN.
    const want = 16 * 27 + 32 * 144 + 64 * 288 + 128 * 576 + 3 * (16 + 32 + 64 + 128) + 2 * 128 + 512 * 128 + 128 + 2 * 128;
    expect(parameterCount(m)).toBe(want);
    expect(smallNetParameterCount({})).toBe(want);
    expect(m.parameters.map((p) => p.name).slice(0, 4)).toEqual(['stage1.conv.weight', 'stage1.bn.weight', 'stage1.bn.bias', 'stage1.prelu.weight']);
    expect(m.parameters.find((p) => p.name === 'fc.weight')!.tensor.shape).toEqual([128, 512]);
    expect(m.parameters.find((p) => p.name === 'features.weight')!.tensor.requiresGrad).toBe(false);
    expect(m.buffers.map((b) => b.name)).toContain('stage4.bn.running_mean');
    m.dispose();
  });

  test('output shapes for other options', () => {
    for (const o of [{ inputSize: 64, embeddingDim: 64 }, { inputSize: 32, stages: 3, width: 8, embeddingDim: 16 }]) {
      const m = build(o);
      expect(parameterCount(m)).toBe(smallNetParameterCount(o));
      const y = noGrad(() => m.forward(randomInput([2, 3, o.inputSize, o.inputSize], 1), { training: false }));
      expect(y.shape).toEqual([2, o.embeddingDim]);
      m.dispose();
    }
  });

  test('an input size that the stages cannot halve is a ConfigError', () => {
    expect(() => build({ inputSize: 40 })).toThrow(ConfigError);
    expect(() => build({ inputSize: 40 })).toThrow(/inputSize 40 must divide by 2\^stages = 16/);
  });
});

describe('training on the CPU backend', () => {
  test('a batch of 32 at 32x32 trains well under a second per step, and the loss falls', async () => {
    const m = build({});
    const rng = createRng(3);
    const x = randomInput([32, 3, 32, 32], 4);
    // A toy objective: pull each embedding towards a fixed random direction of its class.
    const labels = Array.from({ length: 32 }, (_, i) => i % 4);
    const centers = Float32Array.from({ length: 4 * 128 }, () => rng.normal());
    const target = tensor(backend, Float32Array.from(labels.flatMap((l) => Array.from(centers.subarray(l * 128, l * 128 + 128)))), [32, 128]);
    const trainable = m.parameters.filter((p) => p.tensor.requiresGrad);
    const opt = sgd(trainable, { momentum: 0.9 });
    const losses: number[] = [];
    const times: number[] = [];
    for (let step = 0; step < 6; step++) {
      const t0 = performance.now();
      const loss = tidy(() => {
        const e = l2normalize(m.forward(x, { training: true, seed: step }));
        const cos = matmul(e, l2normalize(target), { transB: true }); // 32 x 32, diagonal = own target
        const l = mean(unary('neg', cos));
        backward(l);
        return l;
      });
      opt.step(0.05);
      opt.zeroGrad();
      losses.push(await loss.item());
      times.push(performance.now() - t0);
      loss.dispose();
    }
    // The median of the steps after the first (which includes JIT warm-up): the machine may be
    // shared, and one slow step says more about the neighbours than about the code.
    const sorted = times.slice(1).sort((a, b) => a - b);
    const perStep = sorted[Math.floor(sorted.length / 2)];
    console.log(`smallnet batch 32 @ 32x32: ${perStep.toFixed(0)} ms per step (forward, backward, SGD; median)`);
    expect(perStep).toBeLessThan(1000);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    opt.dispose();
    m.dispose();
  });

  test('train and eval differ; every trainable parameter gets a gradient', async () => {
    const m = build({ dropout: 0.3 });
    const x = randomInput([4, 3, 32, 32], 5);
    const y = tidy(() => {
      const out = m.forward(x, { training: true, seed: 1 });
      backward(sum(out));
      return out;
    });
    for (const p of m.parameters) {
      if (p.name === 'features.weight') expect(p.tensor.grad).toBeNull();
      else expect(p.tensor.grad, p.name).not.toBeNull();
    }
    const e = await noGrad(() => m.forward(x, { training: false })).data();
    const t = await y.data();
    expect(Math.max(...Array.from(t, (v, i) => Math.abs(v - e[i])))).toBeGreaterThan(1e-3);
    m.dispose();
  });

  test('a checkpoint loads back bit-exactly; another architecture is refused by name', async () => {
    const { bytes, mismatched, sameEmbeddings } = await checkBackboneCheckpoint(smallnet, { backend, params: {}, batch: 8 });
    expect(mismatched).toEqual([]);
    expect(sameEmbeddings).toBe(true);
    const other = build({ embeddingDim: 64 });
    expect(() => restoreCheckpoint(bytes, all(other))).toThrow(/tensor fc\.weight has shape \[128, 512\], this model needs \[64, 512\]/);
    const shallower = build({ stages: 3 });
    expect(() => restoreCheckpoint(bytes, all(shallower))).toThrow(/tensor bn2\.weight has shape \[128\], this model needs \[64\]/);
    for (const m of [other, shallower]) m.dispose();
  });
});
