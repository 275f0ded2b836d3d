import { createCpuBackend } from '@fr/backend-cpu';
import { createRng, sgd, tensor, type Backend } from '@fr/core';
import { describe, expect, it } from 'vitest';
import {
  createLossScaler, createShardedHead, FLOAT16_MAX, float16BitsToFloat32, float16ToFloat32Array,
  float32ToFloat16Array, float32ToFloat16Bits, resolveWeightPrecision, roundToFloat16,
} from '../src/index.js';
import { randomEmbeddings, relError } from './reference.js';
import { arcLike } from './transforms.js';

describe('float16 conversion', () => {
  it('matches known bit patterns', () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [0, 0x0000], [-0, 0x8000],
      [Infinity, 0x7c00], [-Infinity, 0xfc00], [2 ** -14, 0x0400], [2 ** -24, 0x0001],
      [0.1, 0x2e66], [1 / 3, 0x3555], [Math.PI, 0x4248], [-1.5, 0xbe00], [1e-5, 0x00a8],
      // Ties go to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02],
      // Overflow: 65520 is halfway to 65536 (not representable) and rounds to infinity; 65519 does not.
      [65520, 0x7c00], [65519, 0x7bff], [1e6, 0x7c00],
      // Underflow: 2^-25 is a tie with 0 (even); anything above it rounds up to the smallest subnormal.
      [2 ** -25, 0x0000], [2 ** -25 * 1.0001, 0x0001], [3 * 2 ** -25, 0x0002], [2 ** -26, 0x0000],
      // A subnormal carrying into the smallest normal.
      [2 ** -14 - 2 ** -25, 0x0400],
    ];
    for (const [value, bits] of cases) expect([value, float32ToFloat16Bits(value)]).toEqual([value, bits]);
    expect(float32ToFloat16Bits(NaN) & 0x7e00).toBe(0x7e00);
    expect(float16BitsToFloat32(0x7bff)).toBe(FLOAT16_MAX);
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16BitsToFloat32(0x3555)).toBe(0.333251953125);
    expect(Object.is(float16BitsToFloat32(0x8000), -0)).toBe(true);
    expect(float16BitsToFloat32(0xfc00)).toBe(-Infinity);
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
  });

  it('round-trips all 63,488 finite patterns and rounds every midpoint to the even neighbour', () => {
    let checked = 0;
    let ties = 0;
    const wrong: string[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const e = (h >>> 10) & 0x1f;
      if (e === 0x1f) continue;
      if (float32ToFloat16Bits(float16BitsToFloat32(h)) !== h) wrong.push(`round trip ${h.toString(16)}`);
      checked++;
      const next = h + 1;
      if ((h & 0x7fff) === 0x7bff || (next & 0x7fff) === 0) continue;
      // The midpoint of two neighbours has 12 significant bits: exact in float32.
      const mid = (float16BitsToFloat32(h) + float16BitsToFloat32(next)) / 2;
      if (Math.fround(mid) !== mid) wrong.push(`midpoint of ${h.toString(16)} not exact`);
      if (float32ToFloat16Bits(mid) !== (h % 2 === 0 ? h : next)) wrong.push(`tie ${h.toString(16)}`);
      ties++;
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe(63488);
    expect(ties).toBe(63486);
  });

  it('converts arrays, rounding through float32 first', () => {
    const src = Float32Array.from([0.1, -3.14159, 70000, 1e-8]);
    const half = float32ToFloat16Array(src);
    expect(Array.from(half)).toEqual([0x2e66, 0xc248, 0x7c00, 0x0000]);
    expect(Array.from(float16ToFloat32Array(half))).toEqual([0.0999755859375, -3.140625, Infinity, 0]);
    expect(roundToFloat16(0.1)).toBe(0.0999755859375);
  });
});

describe('weight precision', () => {
  it('stores the normalised weights in float16 where every backend can, else falls back to float32', () => {
    const cpu = createCpuBackend();
    expect(cpu.capabilities.float16).toBe(true);
    expect(resolveWeightPrecision([cpu], 'float32')).toMatchObject({ storage: 'float32', master: 'float32' });
    expect(resolveWeightPrecision([cpu], 'float16')).toMatchObject({ storage: 'float16', master: 'float32' });
    expect(resolveWeightPrecision([cpu], 'auto').storage).toBe('float16');
    const without: Backend = { ...cpu, capabilities: { ...cpu.capabilities, float16: false, description: 'test f32-only device' } };
    const fallback = resolveWeightPrecision([cpu, without], 'float16');
    expect(fallback.storage).toBe('float32');
    expect(fallback.reason).toMatch(/fallback: no float16 storage on test f32-only device/);
  });

  it('a float16 head gives the float32 head\'s loss and gradients to float16 precision', async () => {
    const C = 300, D = 64, B = 16;
    const labels = Int32Array.from({ length: B }, (_, i) => (i * 37) % C);
    const x = randomEmbeddings(3, B, D);
    const run = async (weightPrecision: 'float32' | 'float16') => {
      const backend = createCpuBackend();
      const head = createShardedHead({ name: 'h', backends: [backend], numClasses: C, embeddingDim: D, rng: createRng(1), transform: () => arcLike(), reducer: 'softmax-ce', weightPrecision });
      const step = await head.forwardBackward(x, labels);
      const grad = Float32Array.from(await head.shards[0].weight.grad!.data());
      expect(backend.stats().bytesLive).toBe(2 * C * D * 4); // weights and their gradient: the step freed the rest
      return { head, step, grad };
    };
    const full = await run('float32');
    const half = await run('float16');
    expect(half.head.precision.storage).toBe('float16');
    expect(Math.abs(half.step.loss - full.step.loss) / full.step.loss).toBeLessThan(2e-3);
    expect(half.step.loss).not.toBe(full.step.loss);
    expect(relError(half.step.embeddingGrad, full.step.embeddingGrad)).toBeLessThan(5e-3);
    expect(relError(half.grad, full.grad)).toBeLessThan(5e-3);
  });
});

describe('logit precision', () => {
  /** The backend's largest live bytes while `fn` runs (alloc and free wrapped). */
  function peakOf(backend: Backend): { peak: () => number } {
    let live = backend.stats().bytesLive;
    let peak = live;
    const sizes = new Map<unknown, number>();
    const alloc = backend.alloc.bind(backend);
    const free = backend.free.bind(backend);
    backend.alloc = (size, dtype, o) => {
      const buffer = alloc(size, dtype, o);
      sizes.set(buffer, size * (dtype === 'float16' ? 2 : 4));
      live += sizes.get(buffer)!;
      peak = Math.max(peak, live);
      return buffer;
    };
    backend.free = (buffer) => {
      live -= sizes.get(buffer) ?? 0;
      free(buffer);
    };
    return { peak: () => peak };
  }

  it('float16 logits and logit gradients: the float32 head\'s loss and gradients to float16 precision, over 1 and 2 shards, at a lower peak', async () => {
    const C = 300, D = 64, B = 16;
    const labels = Int32Array.from({ length: B }, (_, i) => (i * 37) % C);
    const x = randomEmbeddings(4, B, D);
    const run = async (shards: number, logitPrecision: 'float32' | 'float16', weightPrecision: 'float32' | 'float16' = 'float32') => {
      const backends = Array.from({ length: shards }, () => createCpuBackend());
      const peaks = backends.map(peakOf);
      const head = createShardedHead({
        name: 'h', backends, numClasses: C, embeddingDim: D, rng: createRng(1), transform: () => arcLike(), reducer: 'softmax-ce', logitPrecision, weightPrecision,
      });
      const step = await head.forwardBackward(x, labels);
      const grads = new Float32Array(C * D);
      for (const s of head.shards) grads.set((await s.weight.grad!.data()) as Float32Array, s.range.start * D);
      return { head, step, grads, peak: peaks[0].peak() };
    };
    for (const shards of [1, 2]) {
      const full = await run(shards, 'float32');
      const half = await run(shards, 'float16');
      expect(half.head.logitPrecision.storage).toBe('float16');
      expect(half.head.logitPrecision.reason).toMatch(/float16 logits and logit gradients/);
      expect(Math.abs(half.step.loss - full.step.loss) / full.step.loss).toBeLessThan(2e-3);
      expect(half.step.loss).not.toBe(full.step.loss);
      expect(relError(half.step.embeddingGrad, full.step.embeddingGrad)).toBeLessThan(5e-3);
      expect(relError(half.grads, full.grads)).toBeLessThan(5e-3);
      // The B x classes pair (logits, then gradient) of the first shard at 2 bytes per value instead of 4.
      const perShard = Math.ceil(C / shards);
      expect(full.peak - half.peak).toBeGreaterThanOrEqual(B * perShard * 2);
      const both = await run(shards, 'float16', 'float16');
      expect(relError(both.grads, full.grads)).toBeLessThan(1e-2);
    }
  });
});

describe('loss scaler', () => {
  it('dynamic: halves on overflow, grows after N good steps, within bounds', () => {
    const s = createLossScaler({ scale: 8, growthInterval: 3, maxScale: 32, minScale: 2 });
    s.update(false); s.update(false);
    expect(s.scale).toBe(8);
    s.update(false);
    expect(s.scale).toBe(16);
    expect(s.goodSteps).toBe(0);
    s.update(false); s.update(true);
    expect([s.scale, s.goodSteps, s.skippedSteps]).toEqual([8, 0, 1]);
    for (let i = 0; i < 9; i++) s.update(false);
    expect(s.scale).toBe(32);
    for (let i = 0; i < 5; i++) s.update(true);
    expect(s.scale).toBe(2);
  });

  it('static: keeps the scale and still counts skipped steps', () => {
    const s = createLossScaler({ mode: 'static', scale: 128, growthInterval: 1 });
    s.update(false); s.update(true); s.update(false);
    expect([s.scale, s.skippedSteps]).toEqual([128, 1]);
    expect(createLossScaler().scale).toBe(65536);
    expect(() => createLossScaler({ scale: 0 })).toThrow(/positive/);
  });

  it('unscales before the step, and skips a step whose gradients overflow', async () => {
    const cpu = createCpuBackend();
    const w = tensor(cpu, [1, 2, 3, 4], [4], { requiresGrad: true, name: 'w' });
    const params = [{ name: 'w', tensor: w }];
    const opt = sgd(params);
    const scaler = createLossScaler({ scale: 8, growthInterval: 2 });
    w.grad = tensor(cpu, [8, 16, 24, Infinity], [4]);
    expect(await scaler.unscaleAndStep(params, opt, 0.5)).toBe(false);
    expect(Array.from(await w.data())).toEqual([1, 2, 3, 4]);
    expect(scaler.scale).toBe(4);
    opt.zeroGrad();
    w.grad = tensor(cpu, [4, 8, 12, 16], [4]);
    expect(await scaler.unscaleAndStep(params, opt, 0.5)).toBe(true);
    expect(Array.from(await w.data())).toEqual([0.5, 1, 1.5, 2]);
    expect([scaler.scale, scaler.goodSteps, scaler.skippedSteps]).toEqual([4, 1, 1]);
  });

  it('a scaled step of the sharded head lands on the unscaled weights exactly', async () => {
    const make = () => createShardedHead({ name: 'h', backends: [createCpuBackend(), createCpuBackend()], numClasses: 20, embeddingDim: 8, rng: createRng(3), transform: () => arcLike(), reducer: 'softmax-ce' });
    const plain = make();
    const scaled = make();
    const op = sgd(plain.parameters, { momentum: 0.9 });
    const os = sgd(scaled.parameters, { momentum: 0.9 });
    const scaler = createLossScaler({ scale: 2 ** 12 });
    const x = randomEmbeddings(1, 4, 8);
    const y = Int32Array.from([0, 5, 12, 19]);
    await plain.forwardBackward(x, y);
    op.step(0.1);
    const step = await scaled.forwardBackward(x, y, { lossScale: scaler.scale });
    expect(step.loss).toBeGreaterThan(1000);
    expect(await scaler.unscaleAndStep(scaled.parameters, os, 0.1)).toBe(true);
    expect(await scaled.readWeights()).toEqual(await plain.readWeights());
  });
});
