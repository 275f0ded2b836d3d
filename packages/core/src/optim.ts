/** Optimizers and gradient clipping. Updates run as kernels; nothing is read back. */
import type { NamedTensor } from './loss.js';
import type { Backend } from './backend.js';
import { ConfigError, DataError, ShapeError } from './errors.js';
import { empty, keep, type Tensor, tidy, zeros } from './tensor.js';

/** An optimizer over a fixed list of named parameters. */
export interface Optimizer {
  /** Applies one update with the current `.grad` of every parameter, at learning rate `lr`. */
  step(lr: number): void;
  /** Drops every parameter's gradient. */
  zeroGrad(): void;
  /** Optimizer state as named tensors, for checkpoints. */
  state(): NamedTensor[];
  /** Number of steps taken. */
  readonly steps: number;
  /** Restores the step count (state tensors are restored by writing into `state()`). */
  setSteps(steps: number): void;
  dispose(): void;
}

export interface SgdOptions {
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

function zeroLike(t: Tensor, name: string): Tensor {
  return keep(zeros(t.backend, t.shape, name));
}

function zeroGrads(params: readonly NamedTensor[]): void {
  for (const p of params) {
    p.tensor.grad?.dispose();
    p.tensor.grad = null;
  }
}

/** SGD with momentum, dampening, nesterov and weight decay (torch.optim.SGD semantics). */
export function sgd(params: readonly NamedTensor[], o: SgdOptions = {}): Optimizer {
  const momentum = o.momentum ?? 0;
  const nesterov = o.nesterov ?? false;
  if (nesterov && (momentum <= 0 || (o.dampening ?? 0) !== 0)) {
    throw new ConfigError('sgd: nesterov needs momentum > 0 and zero dampening');
  }
  const buffers = params.map((p) => zeroLike(p.tensor, `optim.${p.name}.momentum`));
  let steps = 0;
  return {
    get steps() { return steps; },
    setSteps(s) { steps = s; },
    step(lr) {
      params.forEach((p, i) => {
        const g = p.tensor.grad;
        if (!g) return;
        // torch applies dampening from the second step; the kernel sees a zero buffer at step 1.
        const dampening = steps === 0 ? 0 : o.dampening ?? 0;
        p.tensor.backend.kernels.sgdStep(p.tensor.buffer(), g.buffer(), buffers[i].buffer(), {
          n: p.tensor.size, lr, momentum, dampening, weightDecay: o.weightDecay ?? 0, nesterov,
        });
      });
      steps++;
    },
    zeroGrad: () => zeroGrads(params),
    state: () => buffers.map((t) => ({ name: t.name, tensor: t })),
    dispose() {
      for (const b of buffers) b.dispose();
    },
  };
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** AdamW (torch.optim.AdamW semantics: decoupled weight decay, bias correction). */
export function adamw(params: readonly NamedTensor[], o: AdamWOptions = {}): Optimizer {
  const m = params.map((p) => zeroLike(p.tensor, `optim.${p.name}.exp_avg`));
  const v = params.map((p) => zeroLike(p.tensor, `optim.${p.name}.exp_avg_sq`));
  let steps = 0;
  return {
    get steps() { return steps; },
    setSteps(s) { steps = s; },
    step(lr) {
      steps++;
      params.forEach((p, i) => {
        const g = p.tensor.grad;
        if (!g) return;
        p.tensor.backend.kernels.adamwStep(p.tensor.buffer(), g.buffer(), m[i].buffer(), v[i].buffer(), {
          n: p.tensor.size, lr, beta1: o.beta1 ?? 0.9, beta2: o.beta2 ?? 0.999, eps: o.eps ?? 1e-8,
          weightDecay: o.weightDecay ?? 0.01, step: steps,
        });
      });
    },
    zeroGrad: () => zeroGrads(params),
    state: () => [...m, ...v].map((t) => ({ name: t.name, tensor: t })),
    dispose() {
      for (const t of [...m, ...v]) t.dispose();
    },
  };
}

/**
 * The global L2 norm of all gradients, as a [1] device tensor the caller reads and disposes. Non-finite
 * when any gradient holds a NaN or Inf: how a trainer notices a bad step whose loss still looks finite.
 */
export function gradNorm(params: readonly NamedTensor[]): Tensor {
  const withGrad = gradsOnOneBackend(params, 'gradNorm');
  const total = sumOfSquares(withGrad[0].tensor.backend, withGrad, 'gradNorm');
  total.backend.kernels.unary('sqrt', total.buffer(), total.buffer(), 1);
  return total;
}

/** The sum of squares of the gradients of `params` (all on `backend`), on the device, as a [1] tensor. */
function sumOfSquares(backend: Backend, params: readonly NamedTensor[], name: string): Tensor {
  const k = backend.kernels;
  return tidy(() => {
    const total = empty(backend, [1], 'float32', name);
    const part = empty(backend, [1]);
    k.fill(total.buffer(), 1, 0);
    for (const p of params) {
      k.sumSquares(p.tensor.grad!.buffer(), part.buffer(), p.tensor.size);
      k.axpby(total.buffer(), part.buffer(), total.buffer(), 1, 1, 1);
    }
    return total;
  });
}

/**
 * Scales all gradients so that their global L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_),
 * on the device; returns the norm before clipping, as `gradNorm` does.
 */
export function clipGradNorm(params: readonly NamedTensor[], maxNorm: number): Tensor {
  const withGrad = gradsOnOneBackend(params, 'clipGradNorm');
  const backend = withGrad[0].tensor.backend;
  const k = backend.kernels;
  const total = gradNorm(withGrad);
  tidy(() => {
    // factor = maxNorm / max(norm + 1e-6, maxNorm), which is min(1, maxNorm / (norm + 1e-6)).
    const denom = empty(backend, [1]);
    const limit = empty(backend, [1]);
    k.fill(limit.buffer(), 1, maxNorm);
    k.affine(total.buffer(), denom.buffer(), 1, 1, 1e-6);
    k.binary('max', denom.buffer(), limit.buffer(), denom.buffer(), 1);
    k.binary('div', limit.buffer(), denom.buffer(), denom.buffer(), 1);
    for (const p of withGrad) {
      const g = p.tensor.grad!;
      k.scaleBy(g.buffer(), denom.buffer(), g.buffer(), g.size);
    }
  });
  return total;
}

/** The parameters that have a gradient, all on one backend (the device-side norm needs that). */
function gradsOnOneBackend(params: readonly NamedTensor[], what: string): NamedTensor[] {
  const withGrad = withGradients(params, what);
  const first = withGrad[0].tensor.backend;
  const other = withGrad.find((p) => p.tensor.backend !== first);
  if (other) {
    throw new ShapeError(`${what}: ${withGrad[0].name} and ${other.name} are on different backends; use globalGradNorm and clipGradsToNorm for parameters spread over several devices`);
  }
  return withGrad;
}

function withGradients(params: readonly NamedTensor[], what: string): NamedTensor[] {
  const withGrad = params.filter((p) => p.tensor.grad);
  if (withGrad.length === 0) throw new ShapeError(`${what}: no parameter has a gradient`);
  return withGrad;
}

/**
 * The global L2 norm of all gradients of parameters that may live on several backends (a head
 * sharded over devices): each backend sums its squares on the device, the host reads one float per
 * backend and combines them. Non-finite when any gradient holds a NaN or Inf.
 */
export async function globalGradNorm(params: readonly NamedTensor[]): Promise<number> {
  const byBackend = new Map<Backend, NamedTensor[]>();
  for (const p of withGradients(params, 'globalGradNorm')) byBackend.set(p.tensor.backend, [...(byBackend.get(p.tensor.backend) ?? []), p]);
  const parts = [...byBackend].map(([backend, group]) => sumOfSquares(backend, group, 'gradSumSquares'));
  try {
    const sums = await Promise.all(parts.map((t) => t.item()));
    return Math.sqrt(sums.reduce((a, b) => a + b, 0));
  } finally {
    for (const t of parts) t.dispose();
  }
}

/**
 * Clips gradients to `maxNorm` given their already known global norm (from `globalGradNorm`, or read for
 * overflow detection), so it is not computed twice: each is multiplied by maxNorm / (norm + 1e-6) when
 * that is below 1, as torch.nn.utils.clip_grad_norm_. Returns the factor applied (1: none). Works across backends.
 */
export function clipGradsToNorm(params: readonly NamedTensor[], maxNorm: number, norm: number): number {
  if (!(maxNorm > 0)) throw new ConfigError(`clipGradsToNorm: maxNorm must be positive, got ${maxNorm}`);
  if (!Number.isFinite(norm) || norm < 0) throw new DataError(`clipGradsToNorm: the norm must be finite and non-negative, got ${norm}`);
  const factor = Math.fround(maxNorm / Math.max(norm + 1e-6, maxNorm));
  if (factor >= 1) return 1;
  for (const p of params) {
    const g = p.tensor.grad;
    if (g) g.backend.kernels.affine(g.buffer(), g.buffer(), g.size, factor, 0);
  }
  return factor;
}
