/**
 * The trainer's head from @fr/scale, used when the `head` section asks for what a loss plugin's own
 * head does not do: Partial FC (`sampleRate` < 1, insightface partial_fc: per step every class of
 * the batch is kept and the others are sampled, labels are remapped, only those rows take part and
 * a row-sparse SGD updates them alone), class weights sharded over several devices (`shards` > 1:
 * the softmax losses combine their per-row log-sum-exp across shards, SphereFace2's one-vs-all
 * terms need no reduction across shards), float16 storage of the normalised weights and of the
 * logits and their gradient.
 *
 * The sharded head takes what a loss plugin gives `cosineMarginHead`: a margin transform, a
 * reducer, the term weights, the loss scale and a bias. Loss plugins expose only `createHead`, so
 * the trainer lists here the losses whose head is exactly `cosineMarginHead` with a fixed transform,
 * no row context and no running state; their transforms and constants come from the loss packages.
 */
import { arcface, arcfaceTransform } from '@fr/arcface';
import { cosface, cosfaceTransform } from '@fr/cosface';
import {
  ConfigError, createRng, scaledTransform, sgd, type Backend, type Loss, type MarginTransform, type NamedTensor, type Optimizer, type Reducer, type Rng, type SgdOptions,
} from '@fr/core';
import { createShardedHead, partialFcSgd, type ShardedHead, type ShardedHeadOptions } from '@fr/scale';
import { normface } from '@fr/softmax';
import { sphereface, spherefaceTransform } from '@fr/sphereface';
import { initialBias, sphereface2, sphereface2Transform } from '@fr/sphereface2';
import { x2softmax, x2softmaxTransform } from '@fr/x2softmax';
import type { Plugins } from './plugins.js';

/** What the plugin's own head computes, in the terms of `createShardedHead`. */
type HeadSpec = Pick<ShardedHeadOptions, 'positiveWeight' | 'negativeWeight' | 'scale' | 'bias'> & {
  transform: MarginTransform;
  reducer: Reducer;
};

interface ScaleLoss {
  readonly loss: Loss<unknown>;
  /** The head the plugin builds for these parameters and classes, or why it cannot be built here. */
  spec(params: unknown, numClasses: number): HeadSpec | string;
}

function scaleLoss<P>(loss: Loss<P>, spec: (params: P, numClasses: number) => HeadSpec | string): ScaleLoss {
  return { loss: loss as Loss<unknown>, spec: (params, numClasses) => spec(params as P, numClasses) };
}

const softmax = (transform: MarginTransform): HeadSpec => ({ transform, reducer: 'softmax-ce' });

/** Losses the trainer can run on @fr/scale's head, by plugin (a plugin of the same name from elsewhere is not assumed to match). */
const SCALE_LOSSES: readonly ScaleLoss[] = [
  scaleLoss(normface, (p) => softmax(scaledTransform(p.s))),
  scaleLoss(sphereface, (p) => (p.variant === 'opensphere'
    ? softmax(spherefaceTransform(p.s, p.m))
    : 'in its a-softmax variant (raw-feature scores with an annealed lambda, not a cosine-margin head); its opensphere variant is supported')),
  scaleLoss(cosface, (p) => softmax(cosfaceTransform(p))),
  scaleLoss(arcface, (p) => softmax(arcfaceTransform(p))),
  scaleLoss(x2softmax, (p) => softmax(x2softmaxTransform(p))),
  // As the plugin's head: one-vs-all terms weighted lambda and 1 - lambda, lw / (r B), the paper's initial bias.
  scaleLoss(sphereface2, (p, numClasses) => ({
    transform: sphereface2Transform(p),
    reducer: 'sigmoid-ova',
    positiveWeight: p.lambda,
    negativeWeight: 1 - p.lambda,
    scale: (batch) => p.lw / (p.r * batch),
    bias: initialBias(p, numClasses),
  })),
];

/** Names of the installed losses that can train on @fr/scale's head (Partial FC, shards, float16 weights). */
export function scaleHeadLossNames(plugins: Plugins): string[] {
  return plugins.losses.filter((l) => SCALE_LOSSES.some((s) => s.loss === l)).map((l) => l.name);
}

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
  const entry = SCALE_LOSSES.find((s) => s.loss === plugin);
  if (!entry) {
    return { field, message: `${what} is not supported with loss ${loss.name}: the trainer runs it for ${scaleHeadLossNames(plugins).join(', ')} `
      + `(cosine-margin losses without running state or per-row context); set ${undo} or use one of them` };
  }
  const { name: _n, ...params } = loss;
  const spec = entry.spec(params, 2);
  if (typeof spec === 'string') return { field, message: `${what} is not supported with loss ${loss.name} ${spec}` };
  if (optimizer !== 'sgd') {
    return { field, message: `${what} runs on a head whose class rows a row-sparse SGD updates; optimizer ${optimizer} is not supported with it: set optimizer.name: sgd, or ${undo}` };
  }
  return null;
}

/**
 * The loss's head on @fr/scale: class weights split over `backends` (one shard each; the same
 * backend may appear several times, as when a sharded checkpoint is read on one device), named and
 * initialised as the plugin's head.
 */
export function createScaleHead(o: {
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
}): ShardedHead {
  const spec = SCALE_LOSSES.find((s) => s.loss === o.loss)?.spec(o.params, o.numClasses);
  if (!spec || typeof spec === 'string') {
    throw new ConfigError(`the scale head for loss ${o.loss.name}: ${spec ?? 'not supported'} (the config check should have refused it)`);
  }
  // Same initialisation as cosineMarginHead (N(0, 0.01) from the same generator, shard after
  // shard): the initial weights equal those of the plugin's head, and one shard is named as there.
  return createShardedHead({
    name: o.loss.name,
    backends: o.backends,
    numClasses: o.numClasses,
    embeddingDim: o.embeddingDim,
    rng: o.rng,
    transform: () => spec.transform,
    reducer: spec.reducer,
    positiveWeight: spec.positiveWeight,
    negativeWeight: spec.negativeWeight,
    scale: spec.scale,
    bias: spec.bias,
    sampleRate: o.sampleRate,
    sampleSeed: o.seed,
    weightPrecision: o.weightPrecision,
    logitPrecision: o.logitPrecision,
  });
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
