/**
 * Half precision: the float32 <-> float16 conversion (from @fr/core, re-exported) and the choice of
 * how the head stores its normalised class weights. Only that storage is float16: master weights,
 * gradients, optimizer state and every accumulation stay float32.
 */
import type { Backend } from '@fr/core';

export {
  float32ToFloat16Bits, float16BitsToFloat32, roundToFloat16, float32ToFloat16Array, float16ToFloat32Array, FLOAT16_MAX,
} from '@fr/core';

export type WeightPrecision = 'float32' | 'float16' | 'auto';

export interface ResolvedPrecision {
  /** Storage of the class weights used for compute. */
  storage: 'float32' | 'float16';
  /** Master weights, gradients and optimizer state. */
  master: 'float32';
  /** Why this storage was chosen. */
  reason: string;
}

/** float16 where every backend stores float16 buffers (as asked), else float32 saying why. */
function resolveStorage(backends: readonly Backend[], requested: WeightPrecision, reason16: string): ResolvedPrecision {
  if (requested === 'float32') return { storage: 'float32', master: 'float32', reason: 'float32 requested' };
  const without = backends.filter((b) => !b.capabilities.float16);
  if (without.length > 0) {
    const names = [...new Set(without.map((b) => b.capabilities.description || b.name))].join(', ');
    return { storage: 'float32', master: 'float32', reason: `float32 fallback: no float16 storage on ${names}` };
  }
  return { storage: 'float16', master: 'float32', reason: reason16 };
}

/**
 * Chooses the storage of the normalised class weights that the head's two matmuls read.
 * `float16` (and `auto`) use it where every backend stores float16 buffers, and fall back to float32
 * otherwise, saying why.
 */
export function resolveWeightPrecision(backends: readonly Backend[], requested: WeightPrecision): ResolvedPrecision {
  return resolveStorage(backends, requested,
    'float16 normalised class weights for the logits and embedding-gradient matmuls (2 bytes per value, read as float32); master weights, gradients and sums float32');
}

/**
 * Chooses the storage of the head's B x classes matrices: the logits (cosines) and their gradient.
 * float16 halves the largest activations of a head over many classes; the matmuls and the margin
 * loss sum in float32 and round each stored value once.
 */
export function resolveLogitPrecision(backends: readonly Backend[], requested: WeightPrecision): ResolvedPrecision {
  return resolveStorage(backends, requested,
    'float16 logits and logit gradients (B x classes, 2 bytes per value; computed and summed in float32, rounded once when stored)');
}
