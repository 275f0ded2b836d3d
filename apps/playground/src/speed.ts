/**
 * View 2: training speed of a real backbone on the 112x112 pipeline on this device. One warm-up
 * step compiles every pipeline; the timed steps then include the host-side augmentation, the
 * upload, forward, loss, backward, clip and the SGD update, and end with a read of the loss.
 */
import { backward, clipGradNorm, createRng, parseLossParams, sgd, tensor, tidy, type Backbone, type Backend } from '@fr/core';
import { augmentInto, sampleSeed } from '@fr/data';
import { iresnet } from '@fr/iresnet';
import { mobilefacenet } from '@fr/mobilefacenet';
import { lossEntry } from './losses.js';
import { renderFaces } from './session.js';

export interface SpeedOptions {
  loss: string;
  params?: Record<string, unknown>;
  backbone: 'mobilefacenet' | 'iresnet18';
  batch: number;
  /** Timed steps after the warm-up step. */
  steps: number;
  /** Classes of the head (identities of the synthetic set). */
  classes?: number;
  /** Called after each step with its index (0 is the warm-up) and duration. */
  onStep?: (step: number, ms: number) => void;
}

export interface SpeedResult {
  backend: string;
  backbone: string;
  loss: string;
  batch: number;
  steps: number;
  parameters: number;
  warmupMs: number;
  msPerStep: number;
  imagesPerSecond: number;
}

export const BACKBONES = {
  mobilefacenet: { label: 'MobileFaceNet (mbf, 2.06 M params)', build: (backend: Backend, seed: number) => build(mobilefacenet, {}, backend, seed) },
  iresnet18: { label: 'iResNet-18 (r18)', build: (backend: Backend, seed: number) => build(iresnet, { depth: 18 }, backend, seed) },
} as const;

function build<P>(plugin: Backbone<P>, options: object, backend: Backend, seed: number) {
  const params = plugin.params.parse({ inputSize: 112, ...options });
  return { module: plugin.build({ backend, params, rng: createRng(seed) }), embeddingDim: plugin.embeddingDim(params) };
}

export async function runSpeedTest(backend: Backend, o: SpeedOptions): Promise<SpeedResult> {
  // Batch norm in training mode needs two values per channel after the GDC layer (1x1 maps).
  if (!(Number.isInteger(o.batch) && o.batch >= 2)) throw new Error(`speed test: batch must be an integer of at least 2, got ${o.batch}`);
  if (!(Number.isInteger(o.steps) && o.steps >= 1)) throw new Error(`speed test: steps must be a positive integer, got ${o.steps}`);
  const classes = o.classes ?? 64;
  const size = 112;
  const entry = lossEntry(o.loss);
  const { module, embeddingDim } = BACKBONES[o.backbone].build(backend, 7);
  const head = entry.loss.createHead({
    backend, numClasses: classes, embeddingDim, params: parseLossParams(entry.loss, { ...o.params, ...entry.fixed }), rng: createRng(8),
  });
  const trainable = [...module.parameters, ...head.parameters].filter((p) => p.tensor.requiresGrad);
  const optimizer = sgd(trainable, { momentum: 0.9, weightDecay: 5e-4 });
  // One image per class cycles through the batch: rendering 112x112 faces costs a few ms each.
  const { images, labels: allLabels } = renderFaces(classes, 1, size, 3);
  const plane = 3 * size * size;
  const x = new Float32Array(o.batch * plane);
  const labels = new Int32Array(o.batch);
  const times: number[] = [];
  try {
    for (let step = 0; step <= o.steps; step++) {
      const started = performance.now();
      for (let i = 0; i < o.batch; i++) {
        const k = (step * o.batch + i) % images.length;
        augmentInto(images[k], x, i * plane, sampleSeed(3, step, i), { flip: 0.5 });
        labels[i] = allLabels[k];
      }
      const loss = tidy(() => {
        const input = tensor(backend, x, [o.batch, 3, size, size]);
        const loss = head.forward(module.forward(input, { training: true, seed: step }), labels);
        backward(loss);
        clipGradNorm(trainable, 5);
        return loss;
      });
      optimizer.step(0.1);
      optimizer.zeroGrad();
      const value = await loss.item();
      loss.dispose();
      if (!Number.isFinite(value)) throw new Error(`speed test: loss ${value} at step ${step}`);
      const ms = performance.now() - started;
      times.push(ms);
      o.onStep?.(step, ms);
    }
  } finally {
    module.dispose();
    head.dispose();
    optimizer.dispose();
  }
  const timed = times.slice(1);
  const msPerStep = timed.reduce((a, b) => a + b, 0) / timed.length;
  return {
    backend: backend.name,
    backbone: o.backbone,
    loss: o.loss,
    batch: o.batch,
    steps: o.steps,
    parameters: trainable.reduce((n, p) => n + p.tensor.size, 0),
    warmupMs: times[0],
    msPerStep,
    imagesPerSecond: (o.batch * 1000) / msPerStep,
  };
}
