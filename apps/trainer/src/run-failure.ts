/**
 * Training that fails after it started: the last completed step is saved before the error goes
 * on, and runs whose numbers never produce a step stop instead of finishing "successfully".
 */
import { DataError, type NamedTensor } from '@fr/core';
import type { TrainConfig } from './config.js';

/** Training numbers went NaN or Inf: the run stops and keeps its last good checkpoint. */
export class NonFiniteLossError extends DataError {
  override name = 'NonFiniteLossError';
}

/** Steps skipped in a row (static loss scale overflow, or onNonFinite: skip) before a run stops. */
export const MAX_SKIPPED_IN_ROW = 10;

/** Counts applied and skipped steps; throws when skipping is all a run does. */
export class NumericGuard {
  private inRow = 0;
  private any = false;
  constructor(private readonly config: Pick<TrainConfig, 'lossScale' | 'optimizer'>) {}

  applied(): void {
    this.inRow = 0;
    this.any = true;
  }

  /** A step was skipped (`why`). A dynamic loss scale halves on each, so it ends in a stop of its own. */
  skipped(why: string): void {
    this.inRow++;
    if (this.inRow < MAX_SKIPPED_IN_ROW) return;
    const hint = typeof this.config.lossScale === 'number'
      ? `lower lossScale (now ${this.config.lossScale}) or use lossScale: { mode: dynamic }`
      : `lower the learning rate (now ${this.config.optimizer.lr})`;
    throw new DataError(`${this.inRow} steps in a row were skipped (the last: ${why}); stopped: ${hint}`);
  }

  /** After the loop: a run whose every step was skipped trained nothing. */
  checkAnyApplied(attempted: number): void {
    if (attempted > 0 && !this.any) {
      throw new DataError(`all ${attempted} steps of this run were skipped (non-finite loss or gradients); nothing was trained: lower the learning rate or the loss scale`);
    }
  }
}

/** What `train` needs to save a run that fails: set once training starts, cleared after its last checkpoint. */
export interface RunFailureState {
  startStep?: number;
  step?: () => number;
  checkpointPath?: string;
  save?: () => Promise<void>;
}

/**
 * The error of a run that failed mid-way, after its state was saved: the message says which step
 * the checkpoint holds and where. A run whose numbers went non-finite keeps its last good
 * checkpoint instead (its weights may hold NaN); a run that had not finished a step has nothing new.
 */
export async function failedRunError(e: unknown, run: RunFailureState): Promise<unknown> {
  if (!(e instanceof Error) || e instanceof NonFiniteLossError || !run.save || !run.step) return e;
  const step = run.step();
  if (step === run.startStep) return e;
  let note: string;
  try {
    await run.save();
    note = `the checkpoint of step ${step} is saved in ${run.checkpointPath}; continue with --resume`;
  } catch (saveError) {
    note = `the checkpoint of step ${step} could not be saved either: ${(saveError as Error).message}`;
  }
  e.message = `${e.message}\n${note}`;
  return e;
}

/** Refuses to save a state whose weights or optimizer state hold NaN or Inf, naming the first such tensor. */
export async function checkFiniteState(tensors: readonly NamedTensor[], step: number, checkpointPath: string): Promise<void> {
  for (const { name, tensor } of tensors) {
    if (tensor.dtype === 'int32') continue;
    const data = await tensor.data();
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new NonFiniteLossError(
        `at step ${step} tensor ${name} holds ${data[bad]} (value ${bad}): training diverged; not saved, so ${checkpointPath} keeps the last good state (if one was written). Lower the learning rate`,
      );
    }
  }
}
