/**
 * The trainer's loss head, one contract for every run (`TrainHead`). With a plain `head` section it
 * is the loss plugin's own head, on the tape. When the section asks for what that head does not do
 * (Partial FC: `sampleRate` < 1, insightface partial_fc; class weights over several devices:
 * `shards` > 1; float16 storage of the normalised weights, or of the logits and their gradient), it
 * is @fr/scale's sharded head built from the head's description (`LossHead.description`, which
 * core's `cosineMarginHead` attaches). No loss is named here: a loss whose description cannot run
 * there is refused with what its description says (`scaleHeadProblem`).
 */
import { createCpuBackend } from '@fr/backend-cpu';
import {
  adamw, backward, ConfigError, createRng, keep, scale as scaleOp, sgd, tensor,
  type Backend, type Loss, type LossHead, type NamedTensor, type Optimizer, type Rng, type SgdOptions, type Tensor,
} from '@fr/core';
import { partialFcSgd, scaleHeadProblem, shardedHeadFor, type ShardedHead } from '@fr/scale';
import type { TrainConfig } from './config.js';
import type { Plugins } from './plugins.js';

/** What the `head` section asks for: sampling, shards, float16 weights. */
export interface HeadOptions {
  sampleRate?: number;
  shards?: number;
  weightPrecision?: 'float32' | 'float16';
  logitPrecision?: 'float32' | 'float16';
}

/** Whether a head section needs @fr/scale's head instead of the loss plugin's own. */
export function usesScaleHead(head: HeadOptions): boolean {
  return (head.sampleRate ?? 1) < 1 || (head.shards ?? 1) > 1 || head.weightPrecision === 'float16' || head.logitPrecision === 'float16';
}

/** The key of the head section that asks for @fr/scale's head, how to say it, and how to undo it. */
function askedFor(head: HeadOptions): { field: string; what: string; undo: string } {
  const rate = head.sampleRate ?? 1;
  if (rate < 1) return { field: 'sampleRate', what: `Partial FC (head.sampleRate ${rate})`, undo: 'head.sampleRate: 1' };
  if ((head.shards ?? 1) > 1) return { field: 'shards', what: `a head sharded over ${head.shards} devices (head.shards ${head.shards})`, undo: 'head.shards: 1' };
  if (head.weightPrecision === 'float16') return { field: 'weightPrecision', what: 'head.weightPrecision float16', undo: 'head.weightPrecision: float32' };
  return { field: 'logitPrecision', what: 'head.logitPrecision float16', undo: 'head.logitPrecision: float32' };
}

/** The plugin's head made for its description only (`describeOnly`: no class weights allocated). */
function describeHead(loss: Loss<unknown>, params: unknown, backend: Backend, numClasses: number, embeddingDim: number, rng: Rng): LossHead {
  return loss.createHead({ backend, numClasses, embeddingDim, params, rng, describeOnly: true });
}

/**
 * Why a config cannot train with the head section it gives (null when it can, or when the loss
 * plugin's own head serves it): the field at fault and the message. `loss` is the config's loss
 * entry with its parameters parsed.
 */
export function headSectionProblem(head: HeadOptions, loss: { name: string } & Record<string, unknown>, optimizer: string, plugins: Plugins): { field: string; message: string } | null {
  if (!usesScaleHead(head)) return null;
  const plugin = plugins.losses.find((l) => l.name === loss.name);
  if (!plugin) return null; // an unknown loss is reported by its own field
  const { field, what, undo } = askedFor(head);
  const { name: _n, ...params } = loss;
  // The description, read from a head for 2 classes on a throwaway CPU backend; a head that cannot
  // be made at all is reported when the run builds it.
  const probe = createCpuBackend();
  let problem: string | null = null;
  try {
    const described = describeHead(plugin, plugin.params.parse(params), probe, 2, 512, createRng(0));
    problem = scaleHeadProblem(described, { sampleRate: head.sampleRate, logitPrecision: head.logitPrecision });
    described.dispose();
  } catch {
    return null;
  } finally {
    probe.dispose();
  }
  if (problem) return { field, message: `${what} is not supported with loss ${loss.name}: its head ${problem}; set ${undo}` };
  if (optimizer !== 'sgd') {
    return { field, message: `${what} runs on a head whose class rows a row-sparse SGD updates; optimizer ${optimizer} is not supported with it: set optimizer.name: sgd, or ${undo}` };
  }
  return null;
}

/** One step of the head: loss of the batch, gradients into the head and (through backward) the backbone. */
export interface HeadStepOptions {
  /** Multiplies every gradient (loss scaling); the returned loss is not scaled. */
  lossScale: number;
  /** The run's seed and this step's index: Partial FC's classes are drawn from them alone. */
  seed: number;
  step: number;
}

/** The head of a run, whichever builds it. */
export interface TrainHead {
  readonly parameters: readonly NamedTensor[];
  readonly buffers: readonly NamedTensor[];
  /** Partial FC's sampling rate (1: every class row takes part). */
  readonly sampleRate: number;
  /** Lines saying how the head stores its tensors, when not as float32 (for the log). */
  readonly notes: readonly string[];
  /**
   * Loss of the batch (unscaled). Runs the backward of head and backbone from `embeddings`, inside
   * the caller's tidy scope; gradients land in `.grad` of the trainable tensors.
   */
  lossAndBackward(embeddings: Tensor, labels: Int32Array, o: HeadStepOptions): Promise<number>;
  /** Global class ids whose head rows took part since the last `zeroGrad`, or null (all of them). */
  sampledClasses(): Int32Array | null;
  /** The optimizer of the backbone's trainable tensors and the head's (the scale head's rows by a row-sparse SGD). */
  optimizer(backbone: readonly NamedTensor[], options: TrainConfig['optimizer']): Optimizer;
  /** The whole class weight matrix, shards concatenated (for tests and tools). */
  readClassWeights(): Promise<Float32Array>;
  dispose(): void;
}

/** The loss plugin's own head on the tape. */
export function pluginHead(head: LossHead): TrainHead {
  return {
    parameters: head.parameters,
    buffers: head.buffers,
    sampleRate: 1,
    notes: [],
    async lossAndBackward(embeddings, labels, o) {
      const loss = head.forward(embeddings, labels);
      backward(o.lossScale === 1 ? loss : scaleOp(loss, o.lossScale));
      return loss.item();
    },
    sampledClasses: () => null,
    optimizer(backbone, o) {
      const trainable = [...backbone, ...head.parameters.filter((p) => p.tensor.requiresGrad)];
      return o.name === 'sgd'
        ? sgd(trainable, { momentum: o.momentum, weightDecay: o.weightDecay, nesterov: o.nesterov })
        : adamw(trainable, { beta1: o.beta1, beta2: o.beta2, weightDecay: o.weightDecay });
    },
    readClassWeights: async () => (await head.parameters[0].tensor.data()) as Float32Array,
    dispose: () => head.dispose(),
  };
}

/**
 * The loss's head on @fr/scale, from its description: class weights split over `backends` (one
 * shard each; the same backend may appear several times, as when a sharded checkpoint is read on
 * one device), named and initialised as the plugin's head (N(0, 0.01) from the same generator,
 * shard after shard, after whatever the plugin draws first).
 */
export function scaleHead(o: {
  loss: Loss<unknown>;
  params: unknown;
  backends: readonly Backend[];
  numClasses: number;
  embeddingDim: number;
  rng: Rng;
  sampleRate: number;
  weightPrecision: 'float32' | 'float16';
  logitPrecision: 'float32' | 'float16';
  seed: number;
}): TrainHead {
  const described = describeHead(o.loss, o.params, o.backends[0], o.numClasses, o.embeddingDim, o.rng);
  const head: ShardedHead = shardedHeadFor(described, {
    backends: o.backends, numClasses: o.numClasses, embeddingDim: o.embeddingDim, rng: o.rng,
    sampleRate: o.sampleRate, sampleSeed: o.seed, weightPrecision: o.weightPrecision, logitPrecision: o.logitPrecision,
  });
  const notes = [head.precision, head.logitPrecision].filter((p) => p.storage === 'float16').map((p) => p.reason);
  return {
    parameters: head.parameters,
    buffers: head.buffers,
    sampleRate: head.sampleRate,
    notes,
    async lossAndBackward(embeddings, labels, s) {
      // The head waits on the host mid-step (it samples the classes of this batch, combines its
      // shards) and returns d(loss)/d(embeddings), which the backbone's backward starts from.
      const r = await head.forwardBackward(embeddings, labels, { sampleRng: sampleRngFor(s.seed, s.step), lossScale: s.lossScale });
      // The head's gradients outlive the scope, as the leaf gradients of `backward` do.
      for (const p of head.parameters) if (p.tensor.grad) keep(p.tensor.grad);
      backward(embeddings, tensor(embeddings.backend, r.embeddingGrad, embeddings.shape));
      return r.loss / s.lossScale;
    },
    sampledClasses: () => sampledClasses(head),
    optimizer(backbone, opt) {
      if (opt.name !== 'sgd') throw new ConfigError(`the head section needs optimizer sgd, got ${opt.name}`);
      return scaleHeadOptimizer(backbone, head, { momentum: opt.momentum, weightDecay: opt.weightDecay, nesterov: opt.nesterov });
    },
    readClassWeights: () => head.readWeights(),
    dispose: () => head.dispose(),
  };
}

/**
 * SGD of the backbone plus the row-sparse SGD of the sampled head, as one optimizer. Its state has
 * the names and the order of a plain `sgd` over backbone and head, so checkpoints of the two modes
 * hold the same tensors.
 */
export function scaleHeadOptimizer(backbone: readonly NamedTensor[], head: ShardedHead, options: SgdOptions): Optimizer {
  const body = sgd(backbone, options);
  const rows = partialFcSgd(head, options);
  return {
    get steps() { return body.steps; },
    setSteps(s) {
      body.setSteps(s);
      rows.setSteps(s);
    },
    step(lr) {
      body.step(lr);
      rows.step(lr);
    },
    zeroGrad() {
      body.zeroGrad();
      rows.zeroGrad();
    },
    state: () => [...body.state(), ...rows.state()],
    dispose() {
      body.dispose();
      rows.dispose();
    },
  };
}

/**
 * The generator of step `step`'s sampled classes: a function of (seed, step) only, so that a run
 * resumed from a checkpoint draws what the uninterrupted run draws.
 */
export function sampleRngFor(seed: number, step: number): Rng {
  return createRng((Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b) ^ 0x2545f491) >>> 0);
}

/** Global class ids whose head rows took part in the steps since the last `zeroGrad`, or null (full head). */
export function sampledClasses(head: ShardedHead): Int32Array | null {
  if (head.shards.every((s) => !s.sampled)) return null;
  // Shards hold contiguous ranges in order, so concatenating their sorted ids keeps the order.
  return Int32Array.from(head.shards.flatMap((s) => (s.sampled ? Array.from(s.sampled, (j) => s.range.start + j) : [])));
}
