/**
 * Partial FC's positive-preserving class sampling (insightface arcface_torch partial_fc_v2.py,
 * `PartialFC_V2.sample`): per shard, every class present in the batch is kept, the remaining
 * `floor(rate * count) - positives` slots are filled uniformly without replacement from the other
 * classes, the index is sorted, and labels are remapped to positions in it (torch.searchsorted).
 * When the batch holds more classes than the budget, the index is the positives alone.
 */
import { ConfigError, type Rng } from '@fr/core';
import type { ShardRange } from './split.js';

export interface ShardSample {
  /** Sorted local class ids (0-based within the shard) taking part in this step. */
  index: Int32Array;
  /** Per batch row: position of its label in `index`, or -1 when the label is in another shard. */
  labels: Int32Array;
}

/** Number of classes a shard of `count` classes keeps at `rate` before adding positives. */
export function sampleBudget(count: number, rate: number): number {
  return Math.floor(rate * count);
}

/**
 * Samples one shard. `rng` is consumed only for the negatives, so the draw is deterministic for a
 * seed and a sequence of batches.
 */
export function sampleShard(labels: Int32Array, range: ShardRange, rate: number, rng: Rng): ShardSample {
  if (!(rate > 0 && rate <= 1)) throw new ConfigError(`Partial FC: sample rate must be in (0, 1], got ${rate}`);
  const { start, count } = range;
  const chosen = new Uint8Array(count);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] - start;
    if (y >= 0 && y < count && chosen[y] === 0) {
      chosen[y] = 1;
      positives++;
    }
  }
  const budget = sampleBudget(count, rate);
  let need = budget - positives;
  if (need > 0) {
    const free = count - positives;
    if (need <= free / 2) {
      // Rejection sampling: each draw succeeds with probability >= 1/2.
      while (need > 0) {
        const j = rng.int(count);
        if (chosen[j] === 0) {
          chosen[j] = 1;
          need--;
        }
      }
    } else {
      // Dense case: pick the negatives to leave out instead, then take the rest.
      let drop = free - need;
      while (drop > 0) {
        const j = rng.int(count);
        if (chosen[j] === 0) {
          chosen[j] = 2;
          drop--;
        }
      }
      for (let j = 0; j < count; j++) chosen[j] = chosen[j] === 2 ? 0 : 1;
    }
  }
  let n = 0;
  for (let j = 0; j < count; j++) if (chosen[j] === 1) n++;
  const index = new Int32Array(n);
  // position[j] = rank of class j in the sorted index (what searchsorted returns for a member).
  const position = new Int32Array(count);
  for (let j = 0, k = 0; j < count; j++) {
    if (chosen[j] === 1) {
      position[j] = k;
      index[k++] = j;
    }
  }
  const remapped = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i] - start;
    remapped[i] = y >= 0 && y < count ? position[y] : -1;
  }
  return { index, labels: remapped };
}
