import { float16BitsToFloat32, float32ToFloat16Bits } from '@fr/core';
import { expect, test } from 'vitest';
import { kernelBytes, kernelImports } from './module.js';

// The margin kernels widen float16 rows and round float32 rows to float16 in SIMD; they must give
// core's conversion bit for bit (the reference's).
const memory = new WebAssembly.Memory({ initial: 8, maximum: 65536 });
const { exports } = new WebAssembly.Instance(new WebAssembly.Module(kernelBytes(false) as BufferSource), kernelImports(memory));
const widen = exports.widenHalfRow as (src: number, dst: number, n: number) => void;
const narrow = exports.narrowHalfRow as (src: number, dst: number, n: number) => void;
const SRC = 1 << 16, DST = 1 << 18;

test('every float16 bit pattern widens to core\'s float32 value', () => {
  // 65535 patterns: an odd count puts the last through the scalar tail.
  const n = 65535;
  const bits = new Uint16Array(memory.buffer, SRC, n);
  for (let i = 0; i < n; i++) bits[i] = i;
  widen(SRC, DST, n);
  const got = new Float32Array(memory.buffer, DST, n);
  for (let i = 0; i < n; i++) {
    const want = float16BitsToFloat32(i);
    if (Number.isNaN(want)) {
      // NaN: the payload moves up with the bits (core's conversion gives a NaN without one).
      const raw = new Uint32Array(memory.buffer, DST, n)[i];
      expect(raw, `pattern ${i}`).toBe((((i & 0x8000) << 16) | 0x7f800000 | ((i & 0x3ff) << 13)) >>> 0);
    } else if (got[i] !== want || Object.is(got[i], -0) !== Object.is(want, -0)) {
      expect(got[i], `pattern ${i.toString(16)}`).toBe(want);
    }
  }
});

test('float32 values round to core\'s float16 bit patterns: ties, subnormals, overflow, infinities and NaN', () => {
  const values: number[] = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e6, Infinity, -Infinity, NaN, 2 ** -14, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -26, 3 * 2 ** -25, 1e-10, -1e-10];
  // Ties and their neighbours at several exponents (1 + k 2^-11: odd k are halfway between halves).
  for (const e of [-20, -15, -14, -3, 0, 7, 15]) for (let k = 0; k < 16; k++) for (const d of [-1e-7, 0, 1e-7]) values.push(2 ** e * (1 + k * 2 ** -11) * (1 + d));
  const bits32 = new Uint32Array(4000);
  const f = new Float32Array(bits32.buffer);
  for (let i = 0; i < 3000; i++) bits32[i] = (Math.imul(i + 1, 2654435761) >>> 0);
  f.set(values, 3000);
  const n = 3000 + values.length;
  new Float32Array(memory.buffer, SRC, n).set(f.subarray(0, n));
  narrow(SRC, DST, n);
  const got = new Uint16Array(memory.buffer, DST, n);
  for (let i = 0; i < n; i++) {
    const want = float32ToFloat16Bits(f[i]);
    if (got[i] !== want) expect(`${f[i]} (0x${bits32[i].toString(16)}): 0x${got[i].toString(16)}`).toBe(`${f[i]} (0x${bits32[i].toString(16)}): 0x${want.toString(16)}`);
  }
});
