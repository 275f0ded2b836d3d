/**
 * Partial FC in the trainer (insightface partial_fc): per step every class present in the batch is
 * kept and the others are sampled to `head.sampleRate`, labels are remapped to the sampled rows,
 * only those rows take part in the step, and a row-sparse SGD updates them alone (the weights and
 * momentum of the other rows stay as they are, bit for bit). The head is @fr/scale's sharded head
 * on one shard (the trainer drives one device), its optimizer @fr/scale's `partialFcSgd`.
 *
 * The sharded head takes what a loss plugin gives `cosineMarginHead`: a margin transform and a
 * reducer. Loss plugins expose only `createHead`, so the trainer lists here the losses whose head is
 * exactly `cosineMarginHead` with a fixed transform, softmax cross-entropy, no bias, no row context
 * and no running state; their transforms come from the loss packages themselves.
 */
import { arcface, arcfaceTransform } from '@fr/arcface';
import { cosface, cosfaceTransform } from '@fr/cosface';
import {
  ConfigError, createRng, scaledTransform, sgd, type Backend, type Loss, type MarginTransform, type NamedTensor, type Optimizer, type Rng, type SgdOptions,
} from '@fr/core';
import { createShardedHead, partialFcSgd, type ShardedHead } from '@fr/scale';
import { normface } from '@fr/softmax';
import { sphereface, spherefaceTransform } from '@fr/sphereface';
import { x2softmax, x2softmaxTransform } from '@fr/x2softmax';
import type { Plugins } from './plugins.js';

interface SampledLoss {
  readonly loss: Loss<unknown>;
  /** The transform the plugin's own head applies for these parameters, or why they cannot be sampled. */
  transform(params: unknown): MarginTransform | string;
}

function sampled<P>(loss: Loss<P>, transform: (params: P) => MarginTransform | string): SampledLoss {
  return { loss: loss as Loss<unknown>, transform: (params) => transform(params as P) };
}

/** Losses the trainer can run with a sampled head, by plugin (a plugin of the same name from elsewhere is not assumed to match). */
const SAMPLED_LOSSES: readonly SampledLoss[] = [
  sampled(normface, (p) => scaledTransform(p.s)),
  sampled(sphereface, (p) => (p.variant === 'opensphere'
    ? spherefaceTransform(p.s, p.m)
    : 'in its a-softmax variant (raw-feature scores with an annealed lambda, not a cosine-margin head); its opensphere variant is supported')),
  sampled(cosface, (p) => cosfaceTransform(p)),
  sampled(arcface, (p) => arcfaceTransform(p)),
  sampled(x2softmax, (p) => x2softmaxTransform(p)),
];

/** Names of the installed losses that can train with Partial FC. */
export function partialFcLossNames(plugins: Plugins): string[] {
  return plugins.losses.filter((l) => SAMPLED_LOSSES.some((s) => s.loss === l)).map((l) => l.name);
}

/** What the `head` section asks for: sampling, float16 weights. */
export interface HeadOptions {
  sampleRate?: number;
  weightPrecision?: 'float32' | 'float16';
}

/** Whether a head section needs @fr/scale's head instead of the loss plugin's own. */
export function usesScaleHead(head: HeadOptions): boolean {
  return (head.sampleRate ?? 1) < 1 || head.weightPrecision === 'float16';
}

/**
 * Why a config cannot train with the head section it gives (null when it can, or when the loss
 * plugin's own head serves it): the field at fault and the message. `loss` is the config's loss
 * entry with its parameters parsed.
 */
export function partialFcProblem(head: HeadOptions, loss: { name: string } & Record<string, unknown>, optimizer: string, plugins: Plugins): { field: string; message: string } | null {
  if (!usesScaleHead(head)) return null;
  const plugin = plugins.losses.find((l) => l.name === loss.name);
  if (!plugin) return null; // an unknown loss is reported by its own field
  const rate = head.sampleRate ?? 1;
  const field = rate < 1 ? 'sampleRate' : 'weightPrecision';
  const what = rate < 1 ? `Partial FC (head.sampleRate ${rate})` : 'head.weightPrecision float16';
  const undo = rate < 1 ? 'head.sampleRate: 1' : 'head.weightPrecision: float32';
  const entry = SAMPLED_LOSSES.find((s) => s.loss === plugin);
  if (!entry) {
    return { field, message: `${what} is not supported with loss ${loss.name}: the trainer runs it for ${partialFcLossNames(plugins).join(', ')} `
      + `(softmax cosine-margin losses without running state, bias or per-row context); set ${undo} or use one of them` };
  }
  const { name: _n, ...params } = loss;
  const transform = entry.transform(params);
  if (typeof transform === 'string') return { field, message: `${what} is not supported with loss ${loss.name} ${transform}` };
  if (optimizer !== 'sgd') {
    return { field, message: `${what} runs on a head whose class rows a row-sparse SGD updates; optimizer ${optimizer} is not supported with it: set optimizer.name: sgd, or ${undo}` };
  }
  return null;
}

/** The sampled head of a loss: @fr/scale's sharded head on one shard, named as the plugin's head. */
export function createPartialFcHead(o: {
  loss: Loss<unknown>;
  params: unknown;
  backend: Backend;
  numClasses: number;
  embeddingDim: number;
  rng: Rng;
  sampleRate: number;
  weightPrecision: 'float32' | 'float16';
  seed: number;
}): ShardedHead {
  const entry = SAMPLED_LOSSES.find((s) => s.loss === o.loss);
  const transform = entry?.transform(o.params);
  if (!transform || typeof transform === 'string') {
    throw new ConfigError(`Partial FC head for loss ${o.loss.name}: ${transform ?? 'not supported'} (the config check should have refused it)`);
  }
  // Same initialisation as cosineMarginHead (N(0, 0.01) from the same generator): the initial
  // weights equal those of the full head, and one shard's weight is named `<loss>.weight` as there.
  return createShardedHead({
    name: o.loss.name,
    backends: [o.backend],
    numClasses: o.numClasses,
    embeddingDim: o.embeddingDim,
    rng: o.rng,
    transform: () => transform,
    reducer: 'softmax-ce',
    sampleRate: o.sampleRate,
    sampleSeed: o.seed,
    weightPrecision: o.weightPrecision,
  });
}

/**
 * SGD of the backbone plus the row-sparse SGD of the sampled head, as one optimizer. Its state has
 * the names and the order of a plain `sgd` over backbone and head, so checkpoints of the two modes
 * hold the same tensors.
 */
export function partialFcOptimizer(backbone: readonly NamedTensor[], head: ShardedHead, options: SgdOptions): Optimizer {
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
  const s = head.shards[0];
  return s.sampled ? Int32Array.from(s.sampled, (j) => s.range.start + j) : null;
}
