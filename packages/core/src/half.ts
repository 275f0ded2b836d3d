/**
 * float32 <-> float16 (IEEE binary16) conversion with round-to-nearest-even: subnormals, overflow
 * to infinity, NaN kept quiet. Backends store float16 tensors as these bit patterns, 2 bytes each,
 * and convert to float32 to compute.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bit pattern nearest to the float32 rounding of `value` (ties to even). */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: the implicit bit becomes explicit and 14 - e bits are dropped.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa increments the exponent, up to infinity: that is the right rounding.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** The value of a float16 bit pattern (exact in float32 and in a JS number). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** Rounds to the nearest float16 value (what float16 storage keeps of a float32). */
export function roundToFloat16(value: number): number {
  return float16BitsToFloat32(float32ToFloat16Bits(value));
}

export function float32ToFloat16Array(src: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(src.length);
  convertToFloat16(src instanceof Float32Array ? src : Float32Array.from(src), out, src.length);
  return out;
}

export function float16ToFloat32Array(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  convertFromFloat16(src, out, src.length);
  return out;
}

/** Every float16 pattern's value, built on first use (256 KiB): bulk decoding is one load per value. */
let halfValues: Float32Array | null = null;

/** dst[i] = the value of float16 pattern src[i], for i < n (as float16BitsToFloat32). */
export function convertFromFloat16(src: Uint16Array, dst: Float32Array, n: number): void {
  if (!halfValues) {
    halfValues = new Float32Array(65536);
    for (let b = 0; b < 65536; b++) halfValues[b] = float16BitsToFloat32(b);
  }
  const table = halfValues;
  for (let i = 0; i < n; i++) dst[i] = table[src[i]];
}

/** dst[i] = float32ToFloat16Bits(src[i]) for i < n, reading the float32 bits in place: the bulk path on the CPU. */
export function convertToFloat16(src: Float32Array, dst: Uint16Array, n: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const e = exp - 112; // exp - 127 + 15
    if (e > 0 && e < 0x1f) {
      // Normal half: the common case, inline.
      const mant = x & 0x7fffff;
      let h = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
      dst[i] = sign | h;
    } else {
      dst[i] = float32ToFloat16Bits(src[i]);
    }
  }
}

/** Largest finite float16. */
export const FLOAT16_MAX = 65504;
