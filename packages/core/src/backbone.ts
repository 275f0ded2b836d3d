/**
 * Backbone plugins: a zod schema of the architecture options and a builder of a module. Modules are
 * plain objects with their named tensors and a forward function; no class hierarchy.
 */
import type { z } from './schema.js';
import type { Backend } from './backend.js';
import type { NamedTensor } from './loss.js';
import type { Rng } from './rng.js';
import type { Tensor } from './tensor.js';
import { markPlugin } from './plugin.js';

export interface ForwardMode {
  /** Training mode: batch statistics, dropout active, running averages updated. */
  training: boolean;
  /** Seed for stochastic layers in this forward pass (dropout). */
  seed?: number;
  /**
   * Storage of the activations kept for the backward pass: 'float16' packs them to half the bytes
   * as the forward goes (the forward itself computes in float32 from unrounded values; the backward
   * reads values rounded to float16). Default 'float32'. See `sequential`.
   */
  activationStorage?: 'float32' | 'float16';
}

/** A network of layers with named parameters and buffers. */
export interface Module {
  /** Trainable tensors, with stable names for checkpoints. */
  readonly parameters: readonly NamedTensor[];
  /** Non-trainable persistent tensors (batch-norm running statistics, frozen scales). */
  readonly buffers: readonly NamedTensor[];
  /** Maps an input batch to an output batch, recording on the tape when gradients are enabled. */
  forward(x: Tensor, mode: ForwardMode): Tensor;
  dispose(): void;
}

export interface BackboneContext<P> {
  backend: Backend;
  params: P;
  rng: Rng;
}

/** A backbone plugin. */
export interface Backbone<P = unknown, Name extends string = string> {
  /** The name a config uses to pick this backbone. */
  readonly name: Name;
  /** One line saying what the network is and which implementation it matches. */
  readonly description: string;
  /** zod schema of the architecture options (input size, embedding size, width, dropout). */
  readonly params: z.ZodType<P>;
  /** Input shape [channels, height, width] for these options. */
  inputShape(params: P): [number, number, number];
  /** Embedding dimension for these options. */
  embeddingDim(params: P): number;
  build(context: BackboneContext<P>): Module;
}

/** Types a backbone plugin. */
export function defineBackbone<P, Name extends string>(backbone: Backbone<P, Name>): Backbone<P, Name> {
  return markPlugin(backbone, 'backbone');
}

/** Number of scalars in a module's parameters and buffers, as PyTorch's state_dict counts them. */
export function parameterCount(module: Module, { includeBuffers = false } = {}): number {
  let n = 0;
  for (const p of module.parameters) n += p.tensor.size;
  if (includeBuffers) for (const b of module.buffers) n += b.tensor.size;
  return n;
}
