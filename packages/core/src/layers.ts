/**
 * Differentiable layer ops (convolution, batch normalisation, dropout, pooling, flatten) and the
 * small builders backbones are written with. Builders create named tensors with PyTorch's
 * state_dict names (`layer1.0.conv1.weight`, `bn1.running_mean`), so checkpoints and ONNX exports
 * read like the reference models.
 */
import type { Backend } from './backend.js';
import type { ForwardMode, Module } from './backbone.js';
import type { BatchNormParams, Conv2dParams } from './kernels.js';
import type { NamedTensor } from './loss.js';
import { ConfigError, ShapeError } from './errors.js';
import { checkFloat } from './checks.js';
import { kaimingUniform, uniformInit } from './init.js';
import { linear as linearOp, prelu as preluOp, reshape } from './ops.js';
import { pcgHash, type Rng } from './rng.js';
import { isGradEnabled, record } from './tape.js';
import { empty, nextTensorId, packingScope, tensor, type Tensor } from './tensor.js';

type Pair = number | readonly [number, number];

function pair(v: Pair | undefined, fallback: number, what: string): [number, number] {
  const p: [number, number] = v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((d) => Number.isInteger(d) && d >= 0)) throw new ConfigError(`conv2d: ${what} must be non-negative integers, got ${String(v)}`);
  return p;
}

function shapeText(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

export interface Conv2dOptions {
  /** Stride, one number or [h, w]; default 1. */
  stride?: Pair;
  /** Zero padding on each side, one number or [h, w]; default 0. */
  padding?: Pair;
  /** Channel groups; inChannels and outChannels must divide by it. Default 1. */
  groups?: number;
}

/** Output shape and kernel parameters of a convolution, with clear errors for bad shapes. */
export function conv2dParams(xShape: readonly number[], wShape: readonly number[], o: Conv2dOptions = {}, names = { x: 'input', w: 'weight' }): Conv2dParams {
  if (xShape.length !== 4) throw new ShapeError(`conv2d: ${names.x} must be [N, C, H, W], got ${shapeText(xShape)}`);
  if (wShape.length !== 4) throw new ShapeError(`conv2d: ${names.w} must be [outChannels, inChannels / groups, kH, kW], got ${shapeText(wShape)}`);
  const [batch, inChannels, inHeight, inWidth] = xShape;
  const [outChannels, cg, kernelH, kernelW] = wShape;
  const groups = o.groups ?? 1;
  const [strideH, strideW] = pair(o.stride, 1, 'stride');
  const [padH, padW] = pair(o.padding, 0, 'padding');
  if (!Number.isInteger(groups) || groups < 1 || inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new ShapeError(`conv2d: groups=${groups} must divide the input channels (${inChannels}, ${names.x}) and output channels (${outChannels}, ${names.w})`);
  }
  if (strideH < 1 || strideW < 1) throw new ConfigError(`conv2d: stride must be at least 1, got [${strideH}, ${strideW}]`);
  if (cg !== inChannels / groups) {
    throw new ShapeError(
      `conv2d: ${names.w} has shape ${shapeText(wShape)}, expected ${shapeText([outChannels, inChannels / groups, kernelH, kernelW])} for ${names.x} ${shapeText(xShape)} with groups=${groups}`,
    );
  }
  const outHeight = Math.floor((inHeight + 2 * padH - kernelH) / strideH) + 1;
  const outWidth = Math.floor((inWidth + 2 * padW - kernelW) / strideW) + 1;
  if (outHeight < 1 || outWidth < 1) {
    throw new ShapeError(`conv2d: kernel ${kernelH}x${kernelW} with padding [${padH}, ${padW}] does not fit ${names.x} ${shapeText(xShape)}`);
  }
  return { batch, inChannels, inHeight, inWidth, outChannels, kernelH, kernelW, strideH, strideW, padH, padW, groups, outHeight, outWidth };
}

/** 2-d convolution without bias (NCHW input, OIHW weight with I = C / groups), as F.conv2d. */
export function conv2d(x: Tensor, w: Tensor, o: Conv2dOptions = {}): Tensor {
  checkFloat('conv2d', x, w);
  const p = conv2dParams(x.shape, w.shape, o, { x: x.describe(), w: w.describe() });
  const k = x.backend.kernels;
  const out = empty(x.backend, [p.batch, p.outChannels, p.outHeight, p.outWidth]);
  k.conv2d(x.buffer(), w.buffer(), out.buffer(), p);
  return record(out, 'conv2d', [x, w], (g) => {
    const gx = x.requiresGrad ? empty(x.backend, x.shape) : null;
    if (gx) k.conv2dBackwardInput(g.buffer(), w.buffer(), gx.buffer(), p);
    const gw = w.requiresGrad ? empty(x.backend, w.shape) : null;
    if (gw) k.conv2dBackwardWeight(g.buffer(), x.buffer(), gw.buffer(), p);
    return [gx, gw];
  });
}

/** The tensors of one batch-norm layer. */
export interface BatchNormState {
  /** Scale gamma, [C]. A frozen scale is a tensor that does not require a gradient. */
  weight: Tensor;
  /** Shift beta, [C]. */
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
}

export interface BatchNormOptions {
  /** Training: normalise with batch statistics and update the running ones. */
  training: boolean;
  /** Weight of the new batch statistic in the running average (PyTorch's default 0.1). */
  momentum?: number;
  eps?: number;
}

/**
 * Batch normalisation over dimension 1 of x ([N, C, ...]), as torch.nn.BatchNorm*d. Training normalises with the
 * batch mean and biased variance but updates the running variance with the UNBIASED one, as PyTorch does.
 */
export function batchNorm(x: Tensor, s: BatchNormState, o: BatchNormOptions): Tensor {
  checkFloat('batchNorm', x, s.weight, s.bias, s.runningMean, s.runningVar);
  if (x.rank < 2) throw new ShapeError(`batchNorm: input must be [N, C, ...], got ${x.describe()}`);
  const C = x.shape[1];
  for (const [t, what] of [[s.weight, 'weight'], [s.bias, 'bias'], [s.runningMean, 'running mean'], [s.runningVar, 'running variance']] as const) {
    if (t.rank !== 1 || t.size !== C) throw new ShapeError(`batchNorm: ${what} ${t.describe()} must have shape [${C}] to match input ${x.describe()}`);
  }
  const p: BatchNormParams = {
    outer: x.shape[0], channels: C, inner: x.size / (x.shape[0] * C || 1), eps: o.eps ?? 1e-5, training: o.training,
  };
  const count = p.outer * p.inner;
  if (o.training && count < 2) {
    throw new ShapeError(`batchNorm: training needs more than one value per channel, input ${x.describe()} has ${count}`);
  }
  const k = x.backend.kernels;
  const out = empty(x.backend, x.shape);
  const mean = o.training ? empty(x.backend, [C]) : s.runningMean;
  const variance = o.training ? empty(x.backend, [C]) : s.runningVar;
  k.batchNorm(x.buffer(), s.weight.buffer(), s.bias.buffer(), mean.buffer(), variance.buffer(), out.buffer(), p);
  if (o.training) {
    const m = o.momentum ?? 0.1;
    k.axpby(s.runningMean.buffer(), mean.buffer(), s.runningMean.buffer(), C, 1 - m, m);
    k.axpby(s.runningVar.buffer(), variance.buffer(), s.runningVar.buffer(), C, 1 - m, (m * count) / (count - 1));
  }
  return record(out, 'batchNorm', [x, s.weight, s.bias], (g) => {
    const gx = empty(x.backend, x.shape);
    const gGamma = empty(x.backend, [C]);
    const gBeta = empty(x.backend, [C]);
    // In evaluation the running statistics are read now: an update between forward and backward
    // (another training forward) would change them, which is the caller's business as in PyTorch.
    k.batchNormBackward(g.buffer(), x.buffer(), s.weight.buffer(), mean.buffer(), variance.buffer(), gx.buffer(), gGamma.buffer(), gBeta.buffer(), p);
    return [gx, gGamma, gBeta];
  });
}

/** Batch norm of an [N, C, H, W] tensor. */
export function batchNorm2d(x: Tensor, s: BatchNormState, o: BatchNormOptions): Tensor {
  if (x.rank !== 4) throw new ShapeError(`batchNorm2d: input must be [N, C, H, W], got ${x.describe()}`);
  return batchNorm(x, s, o);
}

/** Batch norm of an [N, C] tensor. */
export function batchNorm1d(x: Tensor, s: BatchNormState, o: BatchNormOptions): Tensor {
  if (x.rank !== 2) throw new ShapeError(`batchNorm1d: input must be [N, C], got ${x.describe()}`);
  return batchNorm(x, s, o);
}

/**
 * Inverted dropout: in training, each element is kept with probability 1 - p and scaled by
 * 1 / (1 - p); the mask is hashUniform(seed, i) >= p, identical on every backend. Outside training
 * (or with p = 0) x is returned as is.
 */
export function dropout(x: Tensor, p: number, seed: number, training: boolean): Tensor {
  checkFloat('dropout', x);
  if (!(p >= 0 && p <= 1)) throw new ConfigError(`dropout: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  const k = x.backend.kernels;
  const out = empty(x.backend, x.shape);
  const mask = empty(x.backend, x.shape);
  k.dropout(x.buffer(), out.buffer(), mask.buffer(), x.size, p, seed >>> 0);
  return record(out, 'dropout', [x], (g) => {
    const gx = empty(x.backend, x.shape);
    k.binary('mul', g.buffer(), mask.buffer(), gx.buffer(), x.size);
    return [gx];
  });
}

/** Mean over the spatial dimensions: [N, C, H, W] -> [N, C]. */
export function globalAvgPool(x: Tensor): Tensor {
  checkFloat('globalAvgPool', x);
  if (x.rank !== 4) throw new ShapeError(`globalAvgPool: input must be [N, C, H, W], got ${x.describe()}`);
  const [N, C, H, W] = x.shape;
  const p = { outer: N, channels: C, inner: H * W };
  const k = x.backend.kernels;
  const out = empty(x.backend, [N, C]);
  k.globalAvgPool(x.buffer(), out.buffer(), p);
  return record(out, 'globalAvgPool', [x], (g) => {
    const gx = empty(x.backend, x.shape);
    k.globalAvgPoolBackward(g.buffer(), gx.buffer(), p);
    return [gx];
  });
}

/** [N, ...] -> [N, product of the rest], as torch.flatten(x, 1). */
export function flatten(x: Tensor): Tensor {
  if (x.rank < 1) throw new ShapeError(`flatten: input must have a batch dimension, got ${x.describe()}`);
  if (x.rank === 2) return x;
  return reshape(x, [x.shape[0], x.size / (x.shape[0] || 1)]);
}

// ---------------------------------------------------------------------------------------------
// Builders

/** A piece of a network: a forward function over tensors it holds. */
export interface Layer {
  forward(x: Tensor, mode: ForwardMode): Tensor;
}

/** Initialiser of a weight of the given shape. */
export type Initializer = (rng: Rng, shape: readonly number[]) => Float32Array;

/** PyTorch's default for Conv2d and Linear weights: kaiming_uniform(a = sqrt(5)), i.e. U(+-1/sqrt(fan_in)). */
export const torchDefaultInit: Initializer = (rng, shape) => kaimingUniform(rng, shape, { negativeSlope: Math.sqrt(5) });

export interface ConvLayerOptions extends Conv2dOptions {
  inChannels: number;
  outChannels: number;
  /** Kernel size, one number or [h, w]. */
  kernel: Pair;
  /** Weight initialiser; default PyTorch's. */
  init?: Initializer;
}

export interface BatchNormLayerOptions {
  eps?: number;
  momentum?: number;
  /** The scale stays at 1 and is not trained (insightface's final feature BN); still a parameter, as in PyTorch. */
  frozenScale?: boolean;
  /** Initial scale (default 1; 0 starts a residual branch as the identity, as zero_init_residual does). */
  initialScale?: number;
}

export interface LinearLayerOptions {
  bias?: boolean;
  init?: Initializer;
}

/** Creates the named tensors of a network; scopes give PyTorch's dotted names. */
export interface LayerBuilder {
  readonly backend: Backend;
  readonly rng: Rng;
  /** The dotted prefix of this scope, with a trailing dot ('' at the root). */
  readonly prefix: string;
  /** A builder whose names start with `prefix + name + '.'`, sharing this one's tensors. */
  scope(name: string | number): LayerBuilder;
  /** A named parameter; `trainable: false` makes it a parameter without gradient (frozen). */
  parameter(name: string, shape: readonly number[], data: Float32Array, options?: { trainable?: boolean }): Tensor;
  /** A named non-trainable persistent tensor. */
  buffer(name: string, shape: readonly number[], data: Float32Array): Tensor;
  /** Conv2d without bias: `<name>.weight`. */
  conv2d(name: string | number, o: ConvLayerOptions): Layer;
  /** BatchNorm1d/2d (by input rank): `<name>.weight`, `.bias`, `.running_mean`, `.running_var`. */
  batchNorm(name: string | number, channels: number, o?: BatchNormLayerOptions): Layer;
  /** PReLU with one slope per channel: `<name>.weight`, initialised to `init` (0.25). */
  prelu(name: string | number, channels: number, init?: number): Layer;
  /** Linear: `<name>.weight` (out x in) and optional `<name>.bias`. */
  linear(name: string | number, inFeatures: number, outFeatures: number, o?: LinearLayerOptions): Layer;
  /** Dropout with its own seed stream (the forward seed mixed with this layer's index). */
  dropout(p: number): Layer;
  /** Every tensor made so far, across all scopes. */
  readonly parameters: readonly NamedTensor[];
  readonly buffers: readonly NamedTensor[];
  /** A Module over every tensor made so far. */
  module(forward: (x: Tensor, mode: ForwardMode) => Tensor): Module;
}

interface Registry {
  parameters: NamedTensor[];
  buffers: NamedTensor[];
  names: Set<string>;
  dropouts: number;
}

/** Starts building a network on `backend`, drawing initial values from `rng`. */
export function layerBuilder(backend: Backend, rng: Rng): LayerBuilder {
  return scopedBuilder(backend, rng, '', { parameters: [], buffers: [], names: new Set(), dropouts: 0 });
}

function scopedBuilder(backend: Backend, rng: Rng, prefix: string, reg: Registry): LayerBuilder {
  const make = (into: NamedTensor[], name: string, shape: readonly number[], data: Float32Array, requiresGrad: boolean): Tensor => {
    const full = prefix + name;
    if (reg.names.has(full)) throw new ConfigError(`layerBuilder: two tensors are named ${full}`);
    reg.names.add(full);
    const t = tensor(backend, data, shape, { requiresGrad, name: full });
    into.push({ name: full, tensor: t });
    return t;
  };
  const b: LayerBuilder = {
    backend,
    rng,
    prefix,
    scope: (name) => scopedBuilder(backend, rng, `${prefix}${name}.`, reg),
    parameter: (name, shape, data, o = {}) => make(reg.parameters, name, shape, data, o.trainable ?? true),
    buffer: (name, shape, data) => make(reg.buffers, name, shape, data, false),
    conv2d(name, o) {
      const [kh, kw] = pair(o.kernel, 1, 'kernel');
      const groups = o.groups ?? 1;
      if (o.inChannels % groups !== 0 || o.outChannels % groups !== 0) {
        throw new ConfigError(`conv ${prefix}${name}: groups=${groups} must divide ${o.inChannels} input and ${o.outChannels} output channels`);
      }
      const shape = [o.outChannels, o.inChannels / groups, kh, kw];
      const weight = b.parameter(`${name}.weight`, shape, (o.init ?? torchDefaultInit)(rng, shape));
      const opts: Conv2dOptions = { stride: o.stride, padding: o.padding, groups };
      return { forward: (x) => conv2d(x, weight, opts) };
    },
    batchNorm(name, channels, o = {}) {
      const s: BatchNormState = {
        weight: b.parameter(`${name}.weight`, [channels], new Float32Array(channels).fill(o.initialScale ?? 1), { trainable: !o.frozenScale }),
        bias: b.parameter(`${name}.bias`, [channels], new Float32Array(channels)),
        runningMean: b.buffer(`${name}.running_mean`, [channels], new Float32Array(channels)),
        runningVar: b.buffer(`${name}.running_var`, [channels], new Float32Array(channels).fill(1)),
      };
      return { forward: (x, mode) => batchNorm(x, s, { training: mode.training, eps: o.eps, momentum: o.momentum }) };
    },
    prelu(name, channels, init = 0.25) {
      const slope = b.parameter(`${name}.weight`, [channels], new Float32Array(channels).fill(init));
      return { forward: (x) => preluOp(x, slope) };
    },
    linear(name, inFeatures, outFeatures, o = {}) {
      const wShape = [outFeatures, inFeatures];
      const weight = b.parameter(`${name}.weight`, wShape, (o.init ?? torchDefaultInit)(rng, wShape));
      const bound = 1 / Math.sqrt(inFeatures); // PyTorch's bias init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
      const bias = (o.bias ?? true) ? b.parameter(`${name}.bias`, [outFeatures], uniformInit(rng, outFeatures, -bound, bound)) : null;
      return {
        forward: (x) => {
          if (x.rank !== 2 || x.shape[1] !== inFeatures) {
            throw new ShapeError(`linear ${prefix}${name}: expected input [N, ${inFeatures}], got ${x.describe()}`);
          }
          return linearOp(x, weight, bias);
        },
      };
    },
    dropout(p) {
      const index = reg.dropouts++;
      return { forward: (x, mode) => dropout(x, p, pcgHash(((mode.seed ?? 0) + Math.imul(index, 0x9e3779b9)) >>> 0), mode.training) };
    },
    get parameters() { return reg.parameters; },
    get buffers() { return reg.buffers; },
    module(forward) {
      const parameters = [...reg.parameters];
      const buffers = [...reg.buffers];
      return {
        parameters,
        buffers,
        // Under float16 activation storage, whatever the forward made besides its output is packed.
        forward: (x, mode) => (packsActivations(mode) ? packingScope(() => forward(x, mode)) : forward(x, mode)),
        dispose() {
          for (const t of [...parameters, ...buffers]) t.tensor.dispose();
        },
      };
    },
  };
  return b;
}

/** Whether a forward in this mode stores its activations for the backward pass in float16. */
function packsActivations(mode: ForwardMode): boolean {
  return mode.activationStorage === 'float16' && isGradEnabled();
}

/**
 * Runs layers one after another. With `activationStorage: 'float16'` each layer runs in a packing
 * scope (its internal tensors are packed when it returns), and each intermediate output is packed
 * once the next layer has read it: inside a chain only the next layer reads it in the forward pass.
 */
export function sequential(...layers: readonly Layer[]): Layer {
  return {
    forward(x, mode) {
      if (!packsActivations(mode)) return layers.reduce((h, l) => l.forward(h, mode), x);
      // Only outputs made in this chain are packed, not a tensor a layer handed on from elsewhere.
      const firstMade = nextTensorId();
      let h = x;
      for (const l of layers) {
        const next = packingScope(() => l.forward(h, mode));
        if (h.id >= firstMade && h !== next && h.rank >= 2) h.packFloat16();
        h = next;
      }
      return h;
    },
  };
}
