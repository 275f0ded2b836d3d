/**
 * A cosine-margin classifier whose class weights are split over K backends (devices), with optional
 * Partial FC sampling. The tape of @fr/core is per backend and synchronous, while combining shards
 * needs host reads (asynchronous on WebGPU), so this head does not record on the tape: it runs its
 * forward and backward explicitly in `forwardBackward`, returns the loss and the gradient of the
 * embeddings, and leaves `.grad` on every shard's weights (and on the shared bias).
 *
 * Softmax losses are combined as insightface's distributed cross-entropy: each shard's fused kernel
 * writes its per-row log-sum-exp, the host combines the K values of each row (the all-reduce, B
 * floats per shard), and a second kernel pass on every shard uses the global value. The one-vs-all
 * sigmoid reducer needs no reduction of logits across shards: each shard adds its own terms.
 */
import {
  assertEmbeddings,
  ConfigError,
  createRng,
  DataError,
  l2normalize,
  noGrad,
  normalInit,
  normsOf,
  ShapeError,
  empty,
  tensor,
  tidy,
  validateLabels,
  type Backend,
  type HeadDescription,
  type MarginTransform,
  type NamedTensor,
  type Reducer,
  type Rng,
  type Tensor,
} from '@fr/core';
import { resolveLogitPrecision, resolveWeightPrecision, type WeightPrecision, type ResolvedPrecision } from './half.js';
import { sampleShard, type ShardSample } from './sampling.js';
import { splitClasses, type ShardRange } from './split.js';

const EPS = 1e-12;

/**
 * What the head computes: the part of a loss's `HeadDescription` this head runs (see
 * `scaleHeadProblem` for the parts it refuses). `rowContext` runs once per step on the first
 * backend, under noGrad; its values reach the other shards through the host. `buffers` (running
 * state the hooks read) become the head's and are released with it.
 */
export interface ShardedHeadOptions extends Pick<HeadDescription, 'name' | 'transform' | 'reducer' | 'positiveWeight' | 'negativeWeight' | 'scale' | 'bias' | 'rowContext' | 'buffers' | 'subCenters'> {
  /** One backend per shard; class weights are split contiguously over them. */
  backends: readonly Backend[];
  numClasses: number;
  embeddingDim: number;
  /**
   * Initialisation: weights N(0, std) drawn shard after shard, so that for one seed the
   * concatenated shards equal the unsharded head's `classWeights`.
   */
  rng: Rng;
  std?: number;
  /** Partial FC: fraction of each shard's classes used per step (positives always kept). Default 1. */
  sampleRate?: number;
  /** Seed of the Partial FC sampler. */
  sampleSeed?: number;
  /** Storage of the class weights: see `resolveWeightPrecision`. Default 'float32'. */
  weightPrecision?: WeightPrecision;
  /** Storage of the logits and their gradient (B x classes per shard): see `resolveLogitPrecision`. Default 'float32'. */
  logitPrecision?: WeightPrecision;
}

export interface Shard {
  readonly backend: Backend;
  /** Global classes [range.start, range.start + range.count). */
  readonly range: ShardRange;
  /** The shard's class weights [count * subCenters, D], float32 (the master copy). */
  readonly weight: Tensor;
  /**
   * Sorted local class ids sampled since the last `clearSampled()` (Partial FC), or null when every
   * class of the shard took part.
   */
  readonly sampled: Int32Array | null;
}

export interface StepOptions {
  /** Multiplies the loss and every gradient (loss scaling for half precision). Default 1. */
  lossScale?: number;
  /**
   * Partial FC: the generator of this step's negative classes, instead of the head's own sampler
   * (seeded by `sampleSeed` and advanced step after step). A trainer that resumes from a checkpoint
   * passes one made from (seed, step), so that a step's draw does not depend on the steps before it.
   */
  sampleRng?: Rng;
}

export interface HeadStep {
  /** The loss of the batch (multiplied by `lossScale`). */
  loss: number;
  /** d(loss)/d(embeddings), [B * D] row-major, summed over shards (multiplied by `lossScale`). */
  embeddingGrad: Float32Array;
}

export interface ShardedHead {
  readonly name: string;
  readonly numClasses: number;
  readonly embeddingDim: number;
  readonly sampleRate: number;
  readonly shards: readonly Shard[];
  /** The shared scalar bias, a parameter on the first shard's backend (null without a bias). */
  readonly bias: Tensor | null;
  /** Trainable tensors: each shard's weights, then the bias. */
  readonly parameters: readonly NamedTensor[];
  /** Non-trainable state of the loss (its description's buffers). */
  readonly buffers: readonly NamedTensor[];
  /** How the class weights are stored and why. */
  readonly precision: ResolvedPrecision;
  /** How the logits and their gradient are stored and why. */
  readonly logitPrecision: ResolvedPrecision;
  /**
   * Forward and backward of one batch. Adds into `.grad` of the shard weights and of the bias, like
   * the tape's `backward`. Embeddings are raw (the head normalises them); labels are global ids.
   */
  forwardBackward(embeddings: Tensor | Float32Array, labels: Int32Array, options?: StepOptions): Promise<HeadStep>;
  /** Forgets which rows were sampled (an optimizer's `zeroGrad` calls it). */
  clearSampled(): void;
  /** The whole weight matrix [C * subCenters, D] (shards concatenated), for checkpoints and evaluation. */
  readWeights(): Promise<Float32Array>;
  dispose(): void;
}

/** Merges two sorted unique int arrays into a sorted unique array. */
function mergeSorted(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  let i = 0, j = 0, n = 0;
  while (i < a.length || j < b.length) {
    const v = j >= b.length || (i < a.length && a[i] <= b[j]) ? a[i] : b[j];
    if (i < a.length && a[i] === v) i++;
    if (j < b.length && b[j] === v) j++;
    out[n++] = v;
  }
  return out.slice(0, n);
}

/** Disposes a tensor of a shard's step before the step ends, and forgets it there. */
function release(owned: Tensor[], t: Tensor): void {
  owned.splice(owned.indexOf(t), 1);
  t.dispose();
}

/** Numerically stable log(sum_s exp(v_s)). */
function logSumExp(values: readonly number[]): number {
  let m = -Infinity;
  for (const v of values) if (v > m) m = v;
  if (m === -Infinity) return m;
  let s = 0;
  for (const v of values) s += Math.exp(v - m);
  return m + Math.log(s);
}

interface ShardWork {
  owned: Tensor[];
  rows: number;
  index: Tensor | null;
  sample: ShardSample | null;
  x: Tensor;
  xn: Tensor;
  xnorm: Tensor;
  /** The rows of the class weights used (the gathered ones under sampling). */
  w: Tensor;
  /** Their normalisation: float32, or float16 when the head stores weights in float16. */
  wn: Tensor;
  wnorm: Tensor;
  cos: Tensor;
  /** What the margin kernel reads: the cosines, or their max over each class's sub-centres. */
  scores: Tensor;
  /** With sub-centres: groupMax's index of each score's first arg-max (the backward reads `cos` and `scores`, so ties all get the gradient). */
  argmax: Tensor | null;
  labels: Tensor;
  classOffset: number;
  context: Tensor | null;
  bias: Tensor | null;
  grad: Tensor;
  rowLoss: Tensor;
  rowLogitGrad: Tensor;
}

/** Creates the head; see the module comment for how a trainer drives it. */
export function createShardedHead(o: ShardedHeadOptions): ShardedHead {
  const K = o.backends.length;
  if (K < 1) throw new ConfigError(`${o.name}: a sharded head needs at least one backend`);
  const D = o.embeddingDim;
  const C = o.numClasses;
  const rate = o.sampleRate ?? 1;
  if (!(rate > 0 && rate <= 1)) throw new ConfigError(`${o.name}: sampleRate must be in (0, 1], got ${rate}`);
  const precision = resolveWeightPrecision(o.backends, o.weightPrecision ?? 'float32');
  const half = precision.storage === 'float16';
  const logitPrecision = resolveLogitPrecision(o.backends, o.logitPrecision ?? 'float32');
  const halfLogits = logitPrecision.storage === 'float16';
  const logitDtype = halfLogits ? 'float16' : 'float32';
  // Sub-centres: class c's rows are c G .. c G + G - 1 of its shard, its score their max.
  const G = o.subCenters ?? 1;
  if (!Number.isInteger(G) || G < 1) throw new ConfigError(`${o.name}: subCenters must be a positive integer, got ${G}`);
  if (G > 1 && rate < 1) throw new ConfigError(`${o.name}: Partial FC does not sample sub-centre heads (subCenters ${G}, sampleRate ${rate})`);
  if (G > 1 && halfLogits) throw new ConfigError(`${o.name}: float16 logits are not kept for sub-centre heads (subCenters ${G})`);
  const ranges = splitClasses(C, K);
  const sampler = createRng(o.sampleSeed ?? 0);
  const shards = ranges.map((range, i) => {
    const backend = o.backends[i];
    const data = normalInit(o.rng, range.count * G * D, 0, o.std ?? 0.01);
    const name = K === 1 ? `${o.name}.weight` : `${o.name}.weight.shard${i}of${K}`;
    const weight = tensor(backend, data, [range.count * G, D], { requiresGrad: true, name });
    return { backend, range, weight, sampled: null as Int32Array | null };
  });
  const bias = o.bias === undefined ? null : tensor(o.backends[0], [o.bias], [1], { requiresGrad: true, name: `${o.name}.bias` });
  const parameters: NamedTensor[] = shards.map((s) => ({ name: s.weight.name, tensor: s.weight }));
  const buffers = o.buffers ?? [];
  if (bias) parameters.push({ name: bias.name, tensor: bias });

  /** Forward of one shard up to its logits; the fused kernel's first (or only) pass runs after every shard's. */
  function forwardShard(i: number, host: Float32Array, rows: number, labels: Int32Array, sample: ShardSample | null, biasValue: number, context: Tensor | null): ShardWork {
    const s = shards[i];
    const b = s.backend;
    const k = b.kernels;
    const owned: Tensor[] = [];
    const own = <T extends Tensor>(t: T): T => (owned.push(t), t);
    const x = own(tensor(b, host, [rows, D], { name: `${o.name}.embeddings` }));
    const xn = own(noGrad(() => l2normalize(x, EPS)));
    const xnorm = own(normsOf(xn));
    let index: Tensor | null = null;
    let rowsUsed = s.range.count * G;
    let w = s.weight;
    if (sample) {
      rowsUsed = sample.index.length;
      index = own(tensor(b, sample.index, [rowsUsed], { dtype: 'int32', name: `${o.name}.sampleIndex` }));
      w = own(empty(b, [rowsUsed, D], 'float32', `${o.name}.sampledWeight`));
      k.gatherRows(s.weight.buffer(), index.buffer(), w.buffer(), rowsUsed, D);
    }
    const wnorm = own(empty(b, [rowsUsed]));
    let wn: Tensor = own(empty(b, [rowsUsed, D], 'float32', `${o.name}.normalizedWeight`));
    k.l2normalizeRows(w.buffer(), wn.buffer(), wnorm.buffer(), rowsUsed, D, EPS);
    if (half) {
      // Only the float16 copy stays until the backward (which recomputes the float32 rows from w).
      const wn16 = own(empty(b, [rowsUsed, D], 'float16', `${o.name}.normalizedWeight16`));
      k.toFloat16(wn.buffer(), wn16.buffer(), rowsUsed * D);
      release(owned, wn);
      wn = wn16;
    }
    const cos = own(empty(b, [rows, rowsUsed], logitDtype, `${o.name}.cos`));
    k.matmul(xn.buffer(), wn.buffer(), cos.buffer(), { m: rows, n: rowsUsed, k: D, transA: false, transB: true, alpha: 1, beta: 0, halfB: half, halfC: halfLogits });
    let scores = cos;
    let argmax: Tensor | null = null;
    if (G > 1) {
      scores = own(empty(b, [rows, rowsUsed / G], 'float32', `${o.name}.scores`));
      argmax = own(empty(b, [rows * (rowsUsed / G)], 'int32', `${o.name}.argmax`));
      k.groupMax(cos.buffer(), scores.buffer(), argmax.buffer(), rows, rowsUsed / G, G);
    }
    const y = own(tensor(b, sample ? sample.labels : labels, [rows], { dtype: 'int32', name: `${o.name}.labels` }));
    const biasT = bias ? own(tensor(b, [biasValue], [1])) : null;
    const work: ShardWork = {
      owned, rows, index, sample, x, xn, xnorm, w, wn, wnorm, cos, scores, argmax, labels: y,
      classOffset: sample ? 0 : s.range.start,
      context, bias: biasT,
      grad: own(empty(b, scores.shape, logitDtype, `${o.name}.dcos`)),
      rowLoss: own(empty(b, [rows])),
      rowLogitGrad: own(empty(b, [rows])),
    };
    return work;
  }

  /** The step's row context: computed once on the first backend (under noGrad), one copy per shard. */
  async function rowContexts(host: Float32Array, rows: number, owned: Tensor[]): Promise<(Tensor | null)[]> {
    if (!o.rowContext) return shards.map(() => null);
    const x = tensor(shards[0].backend, host, [rows, D], { name: `${o.name}.embeddings` });
    owned.push(x);
    const context = tidy(() => noGrad(() => o.rowContext!(x, l2normalize(x, EPS))));
    if (!context) return shards.map(() => null);
    owned.push(context);
    if (context.size !== rows) throw new ShapeError(`${o.name}: row context ${context.describe()} needs ${rows} values`);
    const values = K > 1 ? ((await context.data()) as Float32Array) : null;
    return shards.map((s, i) => (i === 0 ? context : own(tensor(s.backend, values!, [rows], { name: `${o.name}.rowContext` }))));
    function own(t: Tensor): Tensor {
      owned.push(t);
      return t;
    }
  }

  function runKernel(wk: ShardWork, i: number, transform: MarginTransform, scale: number, rowLse: Tensor | null, globalLse: Tensor | null): void {
    shards[i].backend.kernels.marginLoss({
      logits: wk.scores.buffer(),
      labels: wk.labels.buffer(),
      grad: wk.grad.buffer(),
      rowLoss: wk.rowLoss.buffer(),
      rowLogitGrad: wk.rowLogitGrad.buffer(),
      rowContext: wk.context ? wk.context.buffer() : null,
      bias: wk.bias ? wk.bias.buffer() : null,
      rows: wk.rows,
      cols: wk.scores.shape[1],
      classOffset: wk.classOffset,
      rowLogSumExp: rowLse ? rowLse.buffer() : null,
      globalLogSumExp: globalLse ? globalLse.buffer() : null,
      transform,
      reducer: o.reducer,
      halfLogits,
      halfGrad: halfLogits,
      positiveWeight: o.positiveWeight ?? 1,
      negativeWeight: o.negativeWeight ?? 1,
      scale,
    });
  }

  /** Backward of one shard from d(loss)/d(cos); returns d(loss)/d(x) of this shard (on its device). */
  function backwardShard(i: number, wk: ShardWork): Tensor {
    const s = shards[i];
    const b = s.backend;
    const k = b.kernels;
    const own = <T extends Tensor>(t: T): T => (wk.owned.push(t), t);
    const { rows } = wk;
    const used = wk.cos.shape[1];
    let dcos = wk.grad;
    if (wk.argmax) {
      // Each score's gradient to every sub-centre equal to its max (ties included, as MXNet's max).
      const groups = wk.scores.shape[1];
      dcos = own(empty(b, [rows, used]));
      k.groupMaxBackward(wk.cos.buffer(), wk.scores.buffer(), wk.grad.buffer(), dcos.buffer(), rows, groups, used / groups);
      release(wk.owned, wk.scores);
    }
    // Otherwise the logits are read by the margin loss only: released before the backward's buffers exist.
    release(wk.owned, wk.cos);
    const dxn = own(empty(b, [rows, D]));
    k.matmul(dcos.buffer(), wk.wn.buffer(), dxn.buffer(), { m: rows, n: D, k: used, transA: false, transB: false, alpha: 1, beta: 0, halfA: halfLogits, halfB: half });
    const dx = own(empty(b, [rows, D]));
    k.l2normalizeRowsBackward(dxn.buffer(), wk.xn.buffer(), wk.xnorm.buffer(), dx.buffer(), rows, D, EPS);
    const dwn = own(empty(b, [used, D]));
    k.matmul(dcos.buffer(), wk.xn.buffer(), dwn.buffer(), { m: used, n: D, k: rows, transA: true, transB: false, alpha: 1, beta: 0, halfA: halfLogits });
    const dw = empty(b, [used, D], 'float32', `${s.weight.name}.grad`);
    let wn32 = wk.wn;
    if (half) {
      // The normalisation's backward needs the float32 rows: recomputed from the unchanged weights
      // once the float16 copy is released, so the head's peak is no higher than in float32.
      release(wk.owned, wk.wn);
      wn32 = own(empty(b, [used, D]));
      const norms = own(empty(b, [used]));
      k.l2normalizeRows(wk.w.buffer(), wn32.buffer(), norms.buffer(), used, D, EPS);
    }
    k.l2normalizeRowsBackward(dwn.buffer(), wn32.buffer(), wk.wnorm.buffer(), dw.buffer(), used, D, EPS);
    const weight = s.weight;
    if (wk.index) {
      // Scatter the sampled rows' gradient back; every other row's gradient stays zero.
      own(dw);
      if (!weight.grad) {
        weight.grad = empty(b, weight.shape, 'float32', `${weight.name}.grad`);
        k.fill(weight.grad.buffer(), weight.size, 0);
      }
      k.scatterAddRows(dw.buffer(), wk.index.buffer(), weight.grad.buffer(), used, D);
      s.sampled = s.sampled ? mergeSorted(s.sampled, wk.sample!.index) : wk.sample!.index;
    } else if (weight.grad) {
      own(dw);
      k.axpby(weight.grad.buffer(), dw.buffer(), weight.grad.buffer(), weight.size, 1, 1);
    } else {
      weight.grad = dw;
    }
    return dx;
  }

  return {
    name: o.name,
    numClasses: C,
    embeddingDim: D,
    sampleRate: rate,
    shards,
    bias,
    parameters,
    buffers,
    precision,
    logitPrecision,
    async forwardBackward(embeddings, labels, options = {}) {
      const host = embeddings instanceof Float32Array ? embeddings : (await embeddings.data()) as Float32Array;
      if (!(host instanceof Float32Array) || host.length % D !== 0) {
        throw new ShapeError(`${o.name}: embeddings must be float32 [B, ${D}], got ${host.length} values`);
      }
      if (!(embeddings instanceof Float32Array)) assertEmbeddings(embeddings, D, o.name);
      const rows = host.length / D;
      validateLabels(labels, rows, C, `${o.name} labels`);
      const lossScale = options.lossScale ?? 1;
      if (!(lossScale > 0 && Number.isFinite(lossScale))) throw new DataError(`${o.name}: lossScale must be positive and finite, got ${lossScale}`);
      const scale = (o.scale ? o.scale(rows) : 1 / rows) * lossScale;
      const transform = o.transform();
      const biasValue = bias ? (await bias.data())[0] : 0;
      // Samples are drawn shard by shard in order, so a seed fixes the whole sequence.
      const draw = options.sampleRng ?? sampler;
      const samples = shards.map((s) => (rate < 1 ? sampleShard(labels, s.range, rate, draw) : null));
      const combine = o.reducer === 'softmax-ce' && K > 1;
      const works: ShardWork[] = new Array(K);
      // Work is issued phase by phase (every shard's matmuls, then every shard's loss kernel), last
      // shard first: shards on worker backends then compute while the calling thread runs shard 0,
      // which usually shares that thread with the backbone.
      const issueOrder = [...shards.keys()].reverse();
      const stepOwned: Tensor[] = [];
      try {
        const contexts = await rowContexts(host, rows, stepOwned);
        const lses: (Tensor | null)[] = shards.map((s) => (combine ? empty(s.backend, [rows], 'float32', `${o.name}.rowLogSumExp`) : null));
        for (const i of issueOrder) {
          works[i] = forwardShard(i, host, rows, labels, samples[i], biasValue, contexts[i]);
          if (lses[i]) works[i].owned.push(lses[i]!);
        }
        for (const i of issueOrder) runKernel(works[i], i, transform, scale, lses[i], null);
        if (combine) {
          // The all-reduce: B floats from every shard, combined per row on the host.
          const parts = (await Promise.all(lses.map((t) => t!.data()))) as Float32Array[];
          const global = new Float32Array(rows);
          for (let r = 0; r < rows; r++) global[r] = logSumExp(parts.map((p) => p[r]));
          for (const i of issueOrder) {
            const g = tensor(shards[i].backend, global, [rows], { name: `${o.name}.globalLogSumExp` });
            works[i].owned.push(g);
            runKernel(works[i], i, transform, scale, null, g);
          }
        }
        const dxs: Tensor[] = new Array(K);
        for (const i of issueOrder) dxs[i] = backwardShard(i, works[i]);
        const [dxHost, lossHost, logitGradHost] = await Promise.all([
          Promise.all(dxs.map((t) => t.data())),
          Promise.all(works.map((wk) => wk.rowLoss.data())),
          bias ? Promise.all(works.map((wk) => wk.rowLogitGrad.data())) : Promise.resolve([]),
        ]);
        for (const t of dxs) t.dispose();
        const acc = new Float64Array(rows * D);
        for (const part of dxHost) for (let j = 0; j < acc.length; j++) acc[j] += part[j];
        let loss = 0;
        for (const part of lossHost) for (let r = 0; r < rows; r++) loss += part[r];
        if (bias) {
          let db = 0;
          for (const part of logitGradHost) for (let r = 0; r < rows; r++) db += part[r];
          if (bias.grad) {
            const prev = (await bias.grad.data())[0];
            bias.backend.write(bias.grad.buffer(), new Float32Array([prev + db]));
          } else {
            bias.grad = tensor(bias.backend, [db], [1], { name: `${bias.name}.grad` });
          }
        }
        return { loss, embeddingGrad: Float32Array.from(acc) };
      } finally {
        for (const wk of works) if (wk) for (const t of wk.owned) t.dispose();
        for (const t of stepOwned) t.dispose();
      }
    },
    clearSampled() {
      for (const s of shards) s.sampled = null;
    },
    async readWeights() {
      const out = new Float32Array(C * G * D);
      for (const s of shards) out.set((await s.weight.data()) as Float32Array, s.range.start * G * D);
      return out;
    },
    dispose() {
      for (const p of parameters) p.tensor.dispose();
      for (const b of buffers) b.tensor.dispose();
    },
  };
}
