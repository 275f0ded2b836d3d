/**
 * Half precision: float32 <-> float16 conversion with IEEE round-to-nearest-even (subnormals,
 * overflow to infinity, NaN kept quiet), and the choice of how class weights are stored.
 *
 * Only storage would be float16: master weights, gradients, optimizer state and every accumulation
 * stay float32. The kernel table of @fr/core has no float16 operand or cast kernel yet, so today
 * every backend runs the float32 path; `resolveWeightPrecision` says so instead of pretending.
 */
import { BackendError, type Backend } from '@fr/core';

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
  for (let i = 0; i < src.length; i++) out[i] = float32ToFloat16Bits(src[i]);
  return out;
}

export function float16ToFloat32Array(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = float16BitsToFloat32(src[i]);
  return out;
}

/** Largest finite float16. */
export const FLOAT16_MAX = 65504;

export type WeightPrecision = 'float32' | 'float16' | 'auto';

export interface ResolvedPrecision {
  /** Storage of the class weights used for compute. */
  storage: 'float32' | 'float16';
  /** Master weights, gradients and optimizer state. */
  master: 'float32';
  /** Why this storage was chosen. */
  reason: string;
}

/**
 * Chooses the storage of the class weights. `float16` on a device without float16 falls back to
 * float32 (SwiftShader, the CPU backend). On a device that has shader-f16 it is refused, because the
 * kernel table has no float16 operands yet; `auto` then picks float32 and says why.
 */
export function resolveWeightPrecision(backends: readonly Backend[], requested: WeightPrecision): ResolvedPrecision {
  if (requested === 'float32') return { storage: 'float32', master: 'float32', reason: 'float32 requested' };
  const without = backends.filter((b) => !b.capabilities.float16);
  if (without.length > 0) {
    const names = [...new Set(without.map((b) => b.capabilities.description || b.name))].join(', ');
    return { storage: 'float32', master: 'float32', reason: `float32 fallback: no float16 storage on ${names}` };
  }
  const missing = 'the @fr/core kernel table has no float16 operands (a cast kernel and float16 matmul/gatherRows inputs)';
  if (requested === 'auto') return { storage: 'float32', master: 'float32', reason: `float32: the devices have shader-f16 but ${missing}` };
  throw new BackendError(`float16 class weights: the devices have shader-f16 but ${missing}; use 'auto' or 'float32'`);
}
