/**
 * The sharded head of a loss's `HeadDescription`: whatever a plugin describes with core's
 * `cosineMarginHead` gets Partial FC, shards and float16 storage with no code of its own.
 */
import { ConfigError, type HeadDescription, type LossHead } from '@fr/core';
import { createShardedHead, type ShardedHead, type ShardedHeadOptions } from './sharded-head.js';

/**
 * Why a loss head cannot be built as a sharded head (null when it can), worded from what it
 * describes, so a trainer can refuse a loss without knowing its name.
 */
export function scaleHeadProblem(head: Pick<LossHead, 'description'>, setup: Pick<ShardedHeadOptions, 'sampleRate' | 'logitPrecision'> = {}): string | null {
  const d = head.description;
  if (!d) return 'is custom code (a LossHead of its own, not a head description: see cosineMarginHead in @fr/core)';
  const k = d.subCenters ?? 1;
  if (k > 1 && (setup.sampleRate ?? 1) < 1) return `keeps ${k} sub-centres per class (a C x K weight layout), which Partial FC does not sample`;
  if (k > 1 && setup.logitPrecision === 'float16') return `keeps ${k} sub-centres per class (a C x K weight layout), whose logits are not kept in float16`;
  if (d.afterForward) return 'updates its running state from the whole score matrix (afterForward)';
  if (d.scoreContext) return 'reads its per-row input from the whole score matrix (scoreContext), which no shard holds';
  const t = d.transform();
  if (t.contextGradient) return `differentiates its row context (transform ${t.key} has contextGradient), which the sharded head computes without gradient`;
  if (d.extraLoss) return 'adds a loss term of the embeddings to the margin loss (extraLoss)';
  return null;
}

/** What the sharded head needs besides the description. */
export type ShardedHeadSetup = Omit<ShardedHeadOptions, keyof HeadDescription>;

/** The sharded head of a described loss head; throws the `scaleHeadProblem` when there is one. */
export function shardedHeadFor(head: Pick<LossHead, 'description'>, setup: ShardedHeadSetup): ShardedHead {
  const problem = scaleHeadProblem(head, setup);
  if (problem) throw new ConfigError(`${head.description?.name ?? 'this loss'}: the head ${problem}`);
  const { afterForward: _a, extraLoss: _e, scoreContext: _s, ...d } = head.description!;
  return createShardedHead({ ...d, ...setup });
}
