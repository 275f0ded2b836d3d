/**
 * Ctrl-C during training: the first asks the run to save a checkpoint at the current step and stop
 * (exit 130); a second quits at once, except during a checkpoint write, which it lets finish so
 * the file on disk is never half the old run and half the new.
 */
import { FrError } from '@fr/core';

/** Thrown out of long loops (evaluation) when the run was interrupted. */
export class InterruptedError extends FrError {
  override name = 'InterruptedError';
}

/** What the training loop reads and what guards its checkpoint writes. */
export interface TrainSignal {
  interrupted: boolean;
  /** Runs a checkpoint write that a second Ctrl-C must not cut. */
  guardWrite?<T>(write: () => Promise<T>): Promise<T>;
  /** Set by the loop while there is a run to save (between its first step and its last checkpoint). */
  training?: boolean;
}

/** Lets signal handlers and timers run between batches of a long loop. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Throws InterruptedError once the signal is set; for loops that have nothing to save. */
export async function checkInterrupted(signal: { interrupted: boolean } | undefined): Promise<void> {
  await yieldToEventLoop();
  if (signal?.interrupted) throw new InterruptedError('interrupted');
}

/** The training signal of a process: SIGINT handled as described at the top of this file. */
export class RunSignal implements TrainSignal {
  interrupted = false;
  training = false;
  private writes = 0;
  private quitPending = false;

  constructor(
    private readonly quit: () => void,
    private readonly say: (line: string) => void,
  ) {}

  async guardWrite<T>(write: () => Promise<T>): Promise<T> {
    this.writes++;
    try {
      return await write();
    } finally {
      this.writes--;
      if (this.writes === 0 && this.quitPending) this.quit();
    }
  }

  /** One Ctrl-C. */
  press(): void {
    if (!this.training && this.writes === 0) {
      // Nothing trained yet (or everything saved): there is nothing to keep.
      this.quit();
      return;
    }
    if (this.interrupted) {
      if (this.writes > 0) {
        this.quitPending = true;
        this.say('\ninterrupt: quitting once the checkpoint being written is complete');
      } else this.quit();
      return;
    }
    this.interrupted = true;
    this.say('\ninterrupt: saving a checkpoint at the current step (Ctrl-C again to quit at once)');
  }

  /** Installs the handler on this process. */
  install(): this {
    process.on('SIGINT', () => this.press());
    return this;
  }
}
