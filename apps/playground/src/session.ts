/**
 * One training run of View 1: a few synthetic identities, a small network with a 2-d (or 3-d)
 * embedding and one loss head, trained full-batch so that every step moves every point. Written
 * like apps/trainer's loop: forward, loss, backward and clip in one tidy; step outside it.
 */
import {
  backward, clipGradNorm, createRng, normalInit, parseLossParams, sgd, tensor, tidy, type Backend, type LossHead, type Module, type NamedTensor,
  type Optimizer, type Tensor,
} from '@fr/core';
import { augmentInto, sampleSeed, SyntheticFaces, type RgbImage } from '@fr/data';
import { smallnet } from '@fr/smallnet';
import { lossEntry } from './losses.js';
import { angularSpread, type Spread } from './stats.js';

export interface SessionOptions {
  loss: string;
  /** Loss parameters as the controls hold them (validated by the loss's schema). */
  params?: Record<string, unknown>;
  /** Number of identities (classes). */
  identities?: number;
  imagesPerIdentity?: number;
  /** Image side: 16, 24 or 32 (a multiple of 2^stages). */
  size?: number;
  embeddingDim?: 2 | 3;
  seed?: number;
  lr?: number;
  /** Standard deviation of the initial class weights of heads that normalise them (0 keeps the plugin's N(0, 0.01)). */
  classInit?: number;
  /** smallnet's stride-2 conv stages and first-stage channels (each stage doubles them). */
  stages?: number;
  width?: number;
}

export interface Snapshot {
  step: number;
  /** Embeddings of the last training forward, [samples, dim]. */
  embeddings: Float32Array;
  labels: Int32Array;
  /** Class weights, [classes, dim]. */
  weights: Float32Array;
  spread: Spread;
}

export const SESSION_DEFAULTS = { identities: 8, imagesPerIdentity: 6, size: 16, embeddingDim: 2, seed: 1, lr: 0.03, classInit: 1, stages: 2, width: 8 } as const;

/** Renders the identities once; each step re-augments (random flip) from these images. */
export function renderFaces(identities: number, imagesPerIdentity: number, size: number, seed: number) {
  const faces = new SyntheticFaces({ seed, size, trainIdentities: identities, imagesPerIdentity, testIdentities: 1 });
  const images: RgbImage[] = [];
  const labels = new Int32Array(faces.trainLength);
  for (let i = 0; i < faces.trainLength; i++) {
    const s = faces.trainSample(i);
    images.push(s.image);
    labels[i] = s.label;
  }
  return { images, labels };
}

export class TrainSession {
  readonly options: Required<Omit<SessionOptions, 'params'>> & { params: Record<string, unknown> };
  readonly labels: Int32Array;
  readonly losses: number[] = [];
  step = 0;
  private readonly images: RgbImage[];
  private readonly module: Module;
  private readonly head: LossHead;
  private readonly trainable: NamedTensor[];
  private readonly optimizer: Optimizer;
  private readonly weight: Tensor;
  private readonly batch: Float32Array;
  private lastEmbeddings: Tensor | null = null;
  private disposed = false;

  constructor(readonly backend: Backend, o: SessionOptions) {
    this.options = { ...SESSION_DEFAULTS, params: {}, ...o } as TrainSession['options'];
    const { identities, imagesPerIdentity, size, embeddingDim, seed } = this.options;
    const entry = lossEntry(o.loss);
    const { images, labels } = renderFaces(identities, imagesPerIdentity, size, seed);
    this.images = images;
    this.labels = labels;
    this.batch = new Float32Array(labels.length * 3 * size * size);
    const rng = createRng(seed);
    const netParams = smallnet.params.parse({ inputSize: size, embeddingDim, stages: this.options.stages, width: this.options.width });
    this.module = smallnet.build({ backend, params: netParams, rng: rng.fork() });
    const params = parseLossParams(entry.loss, { ...this.options.params, ...entry.fixed });
    this.head = entry.loss.createHead({ backend, numClasses: identities, embeddingDim, params, rng: rng.fork() });
    const weight = this.head.parameters.find((p) => p.name.endsWith('.weight'));
    if (!weight) throw new Error(`${o.loss}: the head has no class weight to draw`);
    this.weight = weight.tensor;
    if (entry.normalizedWeights && this.options.classInit > 0) {
      // A normalised class weight's norm only sets how far one step turns it. At the field's
      // N(0, 0.01) one SGD step at lr 0.1 swings every 2-d direction toward the first batch and
      // the centres start collapsed; a unit-scale start lets them spread out as they learn.
      backend.write(this.weight.buffer(), normalInit(rng.fork(), this.weight.size, 0, this.options.classInit));
    }
    this.trainable = [...this.module.parameters, ...this.head.parameters].filter((p) => p.tensor.requiresGrad);
    this.optimizer = sgd(this.trainable, { momentum: 0.9, weightDecay: 5e-4 });
  }

  get numSamples(): number {
    return this.labels.length;
  }

  /** One full-batch step; resolves with its loss. */
  async trainStep(): Promise<number> {
    if (this.disposed) throw new Error('the session was disposed');
    const { size, seed, lr } = this.options;
    const plane = 3 * size * size;
    for (let i = 0; i < this.images.length; i++) augmentInto(this.images[i], this.batch, i * plane, sampleSeed(seed, this.step, i), { flip: 0.5 });
    const n = this.labels.length;
    this.lastEmbeddings?.dispose();
    const { loss, embeddings } = tidy(() => {
      const x = tensor(this.backend, this.batch, [n, 3, size, size]);
      const embeddings = this.module.forward(x, { training: true, seed: seed * 1_000_003 + this.step });
      const loss = this.head.forward(embeddings, this.labels);
      backward(loss);
      // The field's clip at norm 5 keeps large-s heads from throwing the tiny network off in the first steps.
      clipGradNorm(this.trainable, 5);
      return { loss, embeddings };
    });
    this.lastEmbeddings = embeddings;
    this.optimizer.step(lr);
    this.optimizer.zeroGrad();
    const value = await loss.item();
    loss.dispose();
    this.step++;
    this.losses.push(value);
    return value;
  }

  /** Reads the last step's embeddings and the class weights, and their angular statistics. */
  async snapshot(): Promise<Snapshot> {
    if (!this.lastEmbeddings) throw new Error('snapshot before the first step');
    const dim = this.options.embeddingDim;
    const embeddings = (await this.lastEmbeddings.data()) as Float32Array;
    const weights = (await this.weight.data()) as Float32Array;
    const spread = angularSpread(embeddings, this.labels, weights, this.options.identities, dim);
    return { step: this.step, embeddings, labels: this.labels, weights, spread };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.lastEmbeddings?.dispose();
    this.module.dispose();
    this.head.dispose();
    this.optimizer.dispose();
  }
}
