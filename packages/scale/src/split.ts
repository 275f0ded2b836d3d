/**
 * How classes are split over shards: contiguous ranges, the first `C mod K` shards one class larger,
 * exactly as insightface's Partial FC assigns classes to ranks (num_local, class_start).
 */
import { ConfigError } from '@fr/core';

export interface ShardRange {
  /** First global class id held by the shard. */
  start: number;
  /** Number of classes held by the shard. */
  count: number;
}

/** Splits `numClasses` over `shards` contiguous ranges. */
export function splitClasses(numClasses: number, shards: number): ShardRange[] {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new ConfigError(`splitClasses: numClasses must be a positive integer, got ${numClasses}`);
  if (!Number.isInteger(shards) || shards < 1) throw new ConfigError(`splitClasses: shards must be a positive integer, got ${shards}`);
  if (shards > numClasses) throw new ConfigError(`splitClasses: ${shards} shards for ${numClasses} classes leaves a shard empty`);
  const base = Math.floor(numClasses / shards);
  const extra = numClasses % shards;
  const out: ShardRange[] = [];
  for (let r = 0; r < shards; r++) {
    out.push({ start: base * r + Math.min(r, extra), count: base + (r < extra ? 1 : 0) });
  }
  return out;
}
