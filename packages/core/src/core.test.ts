import { describe, expect, test } from 'vitest';
import { createRng, hashUniform, pcgHash } from './rng.js';
import { createSchedule } from './schedule.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import { FormatError } from './errors.js';
import { fans, kaimingNormal } from './init.js';
import { convertFromFloat16, convertToFloat16, float16BitsToFloat32, float32ToFloat16Bits } from './half.js';

describe('rng', () => {
  test('is deterministic for a seed and resumes from its state', () => {
    const a = createRng(42), b = createRng(42);
    const xs = Array.from({ length: 5 }, () => a.uniform());
    expect(Array.from({ length: 5 }, () => b.uniform())).toEqual(xs);
    const state = a.state();
    const next = [a.uniform(), a.normal(), a.int(10)];
    const c = createRng(state);
    expect([c.uniform(), c.normal(), c.int(10)]).toEqual(next);
    expect(createRng(43).uniform()).not.toEqual(xs[0]);
  });
  test('normal draws have mean 0 and std 1', () => {
    const r = createRng(1);
    const n = 20000;
    let s = 0, s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = r.normal();
      s += v;
      s2 += v * v;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.03);
    expect(Math.abs(Math.sqrt(s2 / n) - 1)).toBeLessThan(0.03);
  });
  test('shuffle is a permutation', () => {
    const xs = createRng(5).shuffle([...Array(100).keys()]);
    expect([...xs].sort((p, q) => p - q)).toEqual([...Array(100).keys()]);
    expect(xs).not.toEqual([...Array(100).keys()]);
  });
  test('hashUniform is in [0, 1), spread, and uses 32-bit arithmetic (known value)', () => {
    expect(pcgHash(0)).toBe(129708002);
    let s = 0;
    for (let i = 0; i < 10000; i++) {
      const u = hashUniform(9, i);
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      s += u;
    }
    expect(Math.abs(s / 10000 - 0.5)).toBeLessThan(0.02);
  });
});

describe('schedules', () => {
  test('warmup then step', () => {
    const f = createSchedule({ name: 'step', warmupSteps: 2, milestones: [4, 6], gamma: 0.1 }, 1, 10);
    expect([0, 1, 2, 3, 4, 5, 6, 9].map(f).map((x) => +x.toFixed(6))).toEqual([0.5, 1, 1, 1, 0.1, 0.1, 0.01, 0.01]);
  });
  test('cosine reaches minLr at the end', () => {
    const f = createSchedule({ name: 'cosine', warmupSteps: 0, minLr: 0.01 }, 0.1, 100);
    expect(f(0)).toBeCloseTo(0.1, 9);
    expect(f(50)).toBeCloseTo(0.055, 9);
    expect(f(100)).toBeCloseTo(0.01, 9);
  });
  test('polynomial decay (power 2, as insightface)', () => {
    const f = createSchedule({ name: 'poly', warmupSteps: 10, power: 2 }, 0.1, 110);
    expect(f(4)).toBeCloseTo(0.05, 9);
    expect(f(60)).toBeCloseTo(0.1 * 0.25, 9);
  });
});

describe('safetensors', () => {
  test('round trip with metadata and an aligned header', () => {
    const bytes = encodeSafetensors(
      { 'a.weight': { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, step: { dtype: 'I32', shape: [1], data: Int32Array.of(7) } },
      { format: 'pt', step: '7' },
    );
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const d = decodeSafetensors(bytes);
    expect(Array.from(d.tensors['a.weight'].data)).toEqual([1, 2, 3, 4]);
    expect(Array.from(d.tensors.step.data)).toEqual([7]);
    expect(d.metadata).toEqual({ format: 'pt', step: '7' });
  });
  test('a truncated file is refused with the tensor and the offset', () => {
    const bytes = encodeSafetensors({ w: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 3), 'model.safetensors')).toThrow(FormatError);
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 3), 'model.safetensors')).toThrow(/model.safetensors: tensor w ends at byte \d+, past the end/);
    expect(() => decodeSafetensors(bytes.subarray(0, 5), 'x')).toThrow(/too short/);
  });
});

describe('initialisers', () => {
  test('fans and kaiming std follow torch.nn.init', () => {
    expect(fans([64, 3, 3, 3])).toEqual({ fanIn: 27, fanOut: 576 });
    const w = kaimingNormal(createRng(2), [256, 512]);
    const std = Math.sqrt(w.reduce((a, b) => a + b * b, 0) / w.length);
    expect(std).toBeCloseTo(Math.sqrt(2 / 512), 3);
  });
});

describe('safetensors from a Node Buffer', () => {
  test('decodes tensors out of a pooled Buffer without reading past them', () => {
    const bytes = encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: Float32Array.of(1.5, -2) } });
    const pooled = Buffer.concat([Buffer.alloc(3), Buffer.from(bytes)]).subarray(3);
    expect(Array.from(decodeSafetensors(pooled).tensors.w.data)).toEqual([1.5, -2]);
  });
});

describe('bulk float16 conversion', () => {
  test('convertFromFloat16 decodes every pattern as float16BitsToFloat32', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const out = new Float32Array(65536);
    convertFromFloat16(all, out, 65536);
    for (let b = 0; b < 65536; b++) expect(Object.is(out[b], Math.fround(float16BitsToFloat32(b))) || (Number.isNaN(out[b]) && Number.isNaN(float16BitsToFloat32(b)))).toBe(true);
  });

  test('convertToFloat16 rounds as float32ToFloat16Bits: every half value, every tie and its neighbours, random bit patterns', () => {
    const bits = new Uint32Array(1);
    const asF32 = new Float32Array(bits.buffer);
    const values: number[] = [];
    for (let b = 0; b < 0x7c00; b++) {
      const v = float16BitsToFloat32(b);
      const next = float16BitsToFloat32(b + 1);
      const tie = Math.fround((v + next) / 2);
      asF32[0] = tie;
      const t = bits[0];
      for (const u of [t - 1, t, t + 1]) {
        bits[0] = u;
        values.push(asF32[0], -asF32[0]);
      }
      values.push(v, -v);
    }
    const rng = createRng(12);
    for (let i = 0; i < 100_000; i++) {
      bits[0] = (rng.int(65536) << 16) | rng.int(65536);
      values.push(asF32[0]);
    }
    values.push(Infinity, -Infinity, NaN, 65504, 65520, 65519.996, 1e-8, -6e-8, 0, -0);
    const src = Float32Array.from(values);
    const out = new Uint16Array(src.length);
    convertToFloat16(src, out, src.length);
    let mismatches = 0;
    for (let i = 0; i < src.length; i++) if (out[i] !== float32ToFloat16Bits(src[i])) mismatches++;
    expect(mismatches).toBe(0);
    // A view into a larger buffer converts only its own values.
    const big = Float32Array.of(1, 2, 0.5, 3);
    const part = new Uint16Array(2);
    convertToFloat16(big.subarray(1, 3), part, 2);
    expect(Array.from(part)).toEqual([float32ToFloat16Bits(2), float32ToFloat16Bits(0.5)]);
  });
});
