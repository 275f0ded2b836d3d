/**
 * Loss plugins. A loss is a typed object made by `defineLoss`: a zod schema of its parameters and a
 * factory of its head (the trainable classifier that maps embeddings and labels to a scalar loss).
 * Most losses of the field are a cosine classifier plus a margin transform; `cosineMarginHead`
 * builds that head so a plugin only supplies the transform.
 */
import type { z } from './schema.js';
import type { Backend } from './backend.js';
import type { Reducer } from './kernels.js';
import type { MarginTransform } from './margin.js';
import type { HeadDescription } from './head.js';
import { ConfigError, DataError, ShapeError } from './errors.js';
import { unknownKeys } from './strict-keys.js';
import { normalInit } from './init.js';
import { markPlugin } from './plugin.js';
import type { Rng } from './rng.js';
import { isGradEnabled, record } from './tape.js';
import { assertDType, empty, Tensor, tensor, zeros } from './tensor.js';

/** A named tensor of a module or head: trainable parameter or persistent state. */
export interface NamedTensor {
  name: string;
  tensor: Tensor;
}

/** What a head factory is given. */
export interface HeadContext<P> {
  backend: Backend;
  /** Number of identities in the training set. */
  numClasses: number;
  embeddingDim: number;
  /** Parsed parameters (defaults applied). */
  params: P;
  /** Generator for initialisation. */
  rng: Rng;
  /** Only the head's description is wanted (@fr/scale builds the head itself): `cosineMarginHead` allocates no weights. */
  describeOnly?: boolean;
}

/** Per-step inputs a caller may give a head in place of what it would draw itself (a reference case, a replay). */
export interface HeadInputs {
  /** One margin per row, used instead of the head's random draws (ElasticFace's N(m, sigma)). */
  margins?: Float32Array;
}

/** The trainable part of a loss. */
export interface LossHead {
  /** Trainable tensors (class weights, biases), with stable names for checkpoints. */
  readonly parameters: readonly NamedTensor[];
  /** Non-trainable state saved in checkpoints (running averages). */
  readonly buffers: readonly NamedTensor[];
  /** The scalar loss of a batch, recorded on the tape. Labels are host integers in [0, numClasses). */
  forward(embeddings: Tensor, labels: Int32Array, inputs?: HeadInputs): Tensor;
  /** The `HeadInputs` this head reads; giving it another is an error, never silently ignored. */
  readonly takes?: readonly (keyof HeadInputs)[];
  dispose(): void;
  /** What the head computes, as data, for @fr/scale to rebuild it (Partial FC, shards, float16); absent for custom heads. */
  readonly description?: HeadDescription;
}

/** A loss plugin. */
export interface Loss<P = unknown, Name extends string = string> {
  /** The name a config uses to pick this loss. */
  readonly name: Name;
  /** One line saying what the loss is and which implementation it matches. */
  readonly description: string;
  /** zod schema of the parameters, with the official defaults and `.describe()` texts. */
  readonly params: z.ZodType<P>;
  createHead(context: HeadContext<P>): LossHead;
}

/** Types a loss plugin. */
export function defineLoss<P, Name extends string>(loss: Loss<P, Name>): Loss<P, Name> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(loss.name)) {
    throw new ConfigError(`defineLoss: name "${loss.name}" must be lower-case letters, digits and dashes`);
  }
  return markPlugin(loss, 'loss');
}

/** Parses loss parameters, with errors that name the loss and the field. */
export function parseLossParams<P>(loss: Loss<P>, input: unknown): P {
  const { unknown, known } = unknownKeys(loss.params, input);
  if (unknown.length) throw new ConfigError(`${loss.name} params: unknown parameter ${unknown.join(', ')}; valid: ${known.join(', ')}`);
  const r = loss.params.safeParse(input ?? {});
  if (!r.success) {
    const detail = r.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ');
    throw new ConfigError(`${loss.name} params: ${detail}`);
  }
  return r.data;
}

/** Checks host labels against the number of classes; the message names the first bad row. */
export function validateLabels(labels: Int32Array, batch: number, numClasses: number, what: string): void {
  if (labels.length !== batch) throw new ShapeError(`${what}: ${labels.length} labels for a batch of ${batch}`);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!(y >= 0 && y < numClasses)) {
      throw new DataError(`${what}: label ${y} at row ${i} is outside [0, ${numClasses})`);
    }
  }
}

/** Checks that a head's input is [B, dim]; the message names the head. */
export function assertEmbeddings(embeddings: Tensor, dim: number, what: string): void {
  if (embeddings.rank !== 2 || embeddings.shape[1] !== dim) {
    throw new ShapeError(`${what}: embeddings must be [B, ${dim}], got ${embeddings.describe()}`);
  }
}

export interface MarginLossOptions {
  transform: MarginTransform;
  reducer: Reducer;
  /** Multiplies the loss and its gradient (1 / batch for a batch mean). */
  scale: number;
  /** sigmoid-ova weights of the target term and of each non-target term. */
  positiveWeight?: number;
  negativeWeight?: number;
  /**
   * Per-row context value given to the transform, shape [B]. It receives a gradient when it
   * requires one and the transform has `contextGradient`; a context that requires a gradient the
   * transform cannot give is refused rather than silently treated as a constant.
   */
  rowContext?: Tensor | null;
  /** Scalar bias added to every logit after the transform; trainable if it requires a gradient. */
  bias?: Tensor | null;
  /** First class held by these scores, for sharded heads. */
  classOffset?: number;
}

/**
 * The fused classifier loss over a score matrix z (B x C, usually cosines): applies the margin
 * transform, reduces with softmax cross-entropy or the one-vs-all sigmoid loss, and writes the
 * gradient in the same pass. Returns the scalar loss; its backward is a scaling of that gradient.
 */
export function marginLoss(z: Tensor, labels: Tensor, o: MarginLossOptions): Tensor {
  assertDType(z, 'float32', 'marginLoss scores');
  assertDType(labels, 'int32', 'marginLoss labels');
  if (z.rank !== 2) throw new ShapeError(`marginLoss: scores must be 2-d, got ${z.describe()}`);
  const [rows, cols] = z.shape;
  if (labels.size !== rows) throw new ShapeError(`marginLoss: ${labels.size} labels for ${rows} rows`);
  if (o.rowContext && o.rowContext.size !== rows) throw new ShapeError(`marginLoss: row context ${o.rowContext.describe()} needs ${rows} values`);
  if (o.bias && o.bias.size !== 1) throw new ShapeError(`marginLoss: bias must be a scalar, got ${o.bias.describe()}`);
  const context = o.rowContext ?? null;
  const contextGrad = context !== null && context.requiresGrad && isGradEnabled();
  if (contextGrad && !o.transform.contextGradient) {
    throw new ShapeError(`marginLoss: row context ${context.describe()} requires a gradient, but transform ${o.transform.key} has no contextGradient (compute the context under noGrad)`);
  }
  const k = z.backend.kernels;
  const grad = empty(z.backend, [rows, cols], 'float32', 'marginLoss.grad');
  const rowLoss = empty(z.backend, [rows], 'float32');
  const rowLogitGrad = empty(z.backend, [rows], 'float32');
  const rowContextGrad = contextGrad ? empty(z.backend, [rows], 'float32', 'marginLoss.contextGrad') : null;
  k.marginLoss({
    logits: z.buffer(), labels: labels.buffer(), grad: grad.buffer(), rowLoss: rowLoss.buffer(), rowLogitGrad: rowLogitGrad.buffer(),
    rowContext: context ? context.buffer() : null, rowContextGrad: rowContextGrad ? rowContextGrad.buffer() : null,
    bias: o.bias ? o.bias.buffer() : null, rows, cols, classOffset: o.classOffset ?? 0, transform: o.transform, reducer: o.reducer,
    positiveWeight: o.positiveWeight ?? 1, negativeWeight: o.negativeWeight ?? 1, scale: o.scale,
  });
  const loss = empty(z.backend, [1], 'float32', 'loss');
  k.reduceSum(rowLoss.buffer(), loss.buffer(), 1, rows, 1);
  const bias = o.bias ?? null;
  const inputs = [z, ...(bias ? [bias] : []), ...(rowContextGrad ? [context!] : [])];
  return record(loss, `marginLoss(${o.transform.key})`, inputs, (g) => {
    const dz = empty(z.backend, [rows, cols]);
    k.scaleBy(grad.buffer(), g.buffer(), dz.buffer(), dz.size);
    const out: (Tensor | null)[] = [dz];
    if (bias) {
      const db = bias.requiresGrad ? empty(z.backend, [1]) : null;
      if (db) {
        k.reduceSum(rowLogitGrad.buffer(), db.buffer(), 1, rows, 1);
        k.scaleBy(db.buffer(), g.buffer(), db.buffer(), 1);
      }
      out.push(db);
    }
    if (rowContextGrad) {
      const dc = empty(z.backend, context!.shape);
      k.scaleBy(rowContextGrad.buffer(), g.buffer(), dc.buffer(), rows);
      out.push(dc);
    }
    return out;
  });
}

/**
 * Max over contiguous groups of columns: x is [B, groups * size] (class c's sub-centers in columns
 * c*size .. c*size + size - 1), the result [B, groups]. The gradient goes to every element equal to
 * its group's max, in full (ties included), as MXNet's max routes it; torch.max picks one.
 */
export function maxOverGroups(x: Tensor, size: number): Tensor {
  assertDType(x, 'float32', 'maxOverGroups input');
  if (x.rank !== 2) throw new ShapeError(`maxOverGroups: input must be 2-d, got ${x.describe()}`);
  const [rows, cols] = x.shape;
  if (!Number.isInteger(size) || size < 1 || cols % size !== 0) {
    throw new ShapeError(`maxOverGroups: ${cols} columns of ${x.describe()} do not split into groups of ${size}`);
  }
  const groups = cols / size;
  const k = x.backend.kernels;
  const out = empty(x.backend, [rows, groups], 'float32', 'maxOverGroups');
  const index = empty(x.backend, [rows * groups], 'int32', 'maxOverGroups.index');
  k.groupMax(x.buffer(), out.buffer(), index.buffer(), rows, groups, size);
  index.dispose();
  return record(out, 'maxOverGroups', [x], (g) => {
    const d = empty(x.backend, x.shape);
    k.groupMaxBackward(x.buffer(), out.buffer(), g.buffer(), d.buffer(), rows, groups, size);
    return [d];
  });
}

/** Uploads host labels as an int32 tensor after checking their range. */
export function labelTensor(backend: Backend, labels: Int32Array, numClasses: number, what = 'labels'): Tensor {
  validateLabels(labels, labels.length, numClasses, what);
  return tensor(backend, labels, [labels.length], { dtype: 'int32', name: what });
}

/** Class weights of a classifier, N(0, 0.01) as insightface initialises them. */
export function classWeights(ctx: HeadContext<unknown>, name: string, std = 0.01): Tensor {
  const data = normalInit(ctx.rng, ctx.numClasses * ctx.embeddingDim, 0, std);
  return tensor(ctx.backend, data, [ctx.numClasses, ctx.embeddingDim], { requiresGrad: true, name });
}
