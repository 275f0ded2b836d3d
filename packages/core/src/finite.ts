/**
 * Finiteness checks on device tensors. Device memory cannot be inspected synchronously, so the
 * check reads the values back: a trainer calls it on the embeddings and the loss each logging step.
 * The embeddings matter on their own: WGSL min/max/clamp may turn a NaN into one of the bounds, so
 * a NaN embedding can give a finite loss on WebGPU.
 */
import { DataError } from './errors.js';
import type { Tensor } from './tensor.js';

/**
 * Reads a tensor and throws a DataError at its first NaN or Inf, naming the row and column of a
 * 2-d tensor.
 */
export async function checkFinite(t: Tensor, what: string): Promise<void> {
  const data = await t.data();
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const at = t.rank === 2 ? `row ${Math.floor(i / t.shape[1])}, column ${i % t.shape[1]}` : `index ${i}`;
      throw new DataError(`${what}: non-finite value ${data[i]} at ${at} of ${t.describe()}`);
    }
  }
}
