/**
 * Loss scaling for half-precision training, as torch.cuda.amp.GradScaler: the loss (and so every
 * gradient) is multiplied by `scale` so small gradients survive float16; before the update the
 * gradients are checked for Inf/NaN and divided by `scale`. A step with an overflow is skipped.
 * Dynamic scaling halves the scale on overflow and doubles it after `growthInterval` good steps.
 */
import { ConfigError, empty, type NamedTensor, type Optimizer } from '@fr/core';

export interface LossScalerOptions {
  /** 'static' keeps the scale; 'dynamic' (default) adapts it. */
  mode?: 'static' | 'dynamic';
  /** Initial (or static) scale; default 2^16 as torch. */
  scale?: number;
  /** Factor applied after `growthInterval` steps without overflow; default 2. */
  growthFactor?: number;
  /** Factor applied on overflow; default 0.5. */
  backoffFactor?: number;
  /** Good steps before growing; default 2000 as torch. */
  growthInterval?: number;
  /** Bounds of a dynamic scale; defaults 1 and 2^24. */
  minScale?: number;
  maxScale?: number;
  /** Good steps already counted (a run resumed from a checkpoint); default 0. */
  goodSteps?: number;
  /** Skipped steps already counted; default 0. */
  skippedSteps?: number;
}

export interface LossScaler {
  /** The factor to multiply the loss by this step. */
  readonly scale: number;
  /** Steps without overflow since the last change of scale. */
  readonly goodSteps: number;
  /** Steps skipped because of an overflow. */
  readonly skippedSteps: number;
  /** Advances the state machine after a step; `overflow` says whether gradients were non-finite. */
  update(overflow: boolean): void;
  /** Divides the gradients of `params` by the scale, on their devices (before clipping and the step). */
  unscale(params: readonly NamedTensor[]): void;
  /**
   * Checks the gradients of `params` for Inf/NaN (one float read per tensor), then either divides
   * them by the scale and runs `optimizer.step(lr)`, or skips the step. Calls `update` and returns
   * whether the step was applied. The caller still calls `optimizer.zeroGrad()` afterwards.
   */
  unscaleAndStep(params: readonly NamedTensor[], optimizer: Optimizer, lr: number): Promise<boolean>;
}

export function createLossScaler(o: LossScalerOptions = {}): LossScaler {
  const mode = o.mode ?? 'dynamic';
  const growth = o.growthFactor ?? 2;
  const backoff = o.backoffFactor ?? 0.5;
  const interval = o.growthInterval ?? 2000;
  const minScale = o.minScale ?? 1;
  const maxScale = o.maxScale ?? 2 ** 24;
  let scale = o.scale ?? 2 ** 16;
  if (!(scale > 0 && Number.isFinite(scale))) throw new ConfigError(`loss scaler: scale must be positive and finite, got ${scale}`);
  if (!(growth > 1) || !(backoff > 0 && backoff < 1)) throw new ConfigError('loss scaler: growthFactor must be > 1 and backoffFactor in (0, 1)');
  if (!(Number.isInteger(interval) && interval >= 1)) throw new ConfigError(`loss scaler: growthInterval must be a positive integer, got ${interval}`);
  let good = o.goodSteps ?? 0;
  let skipped = o.skippedSteps ?? 0;
  const scaler: LossScaler = {
    get scale() { return scale; },
    get goodSteps() { return good; },
    get skippedSteps() { return skipped; },
    update(overflow) {
      if (overflow) skipped++;
      if (mode === 'static') return;
      if (overflow) {
        scale = Math.max(minScale, scale * backoff);
        good = 0;
        return;
      }
      good++;
      if (good >= interval) {
        scale = Math.min(maxScale, scale * growth);
        good = 0;
      }
    },
    unscale(params) {
      const inv = 1 / scale;
      for (const p of params) {
        const g = p.tensor.grad;
        if (g) g.backend.kernels.affine(g.buffer(), g.buffer(), g.size, inv, 0);
      }
    },
    async unscaleAndStep(params, optimizer, lr) {
      const withGrad = params.filter((p) => p.tensor.grad);
      // The sum of squares is non-finite iff some gradient is (or the norm itself overflows float32).
      const sums = withGrad.map((p) => {
        const g = p.tensor.grad!;
        const out = empty(g.backend, [1], 'float32', 'lossScaler.sumSquares');
        g.backend.kernels.sumSquares(g.buffer(), out.buffer(), g.size);
        return out;
      });
      let overflow = false;
      try {
        for (const v of await Promise.all(sums.map((t) => t.item()))) if (!Number.isFinite(v)) overflow = true;
      } finally {
        for (const t of sums) t.dispose();
      }
      if (!overflow) {
        scaler.unscale(withGrad);
        optimizer.step(lr);
      }
      scaler.update(overflow);
      return !overflow;
    },
  };
  return scaler;
}
