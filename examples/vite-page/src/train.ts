import { arcface } from '@fr/arcface';
import { backward, createRng, parseLossParams, sgd, tensor, tidy, type Backend } from '@fr/core';
import { smallnet } from '@fr/smallnet';

/** Toy data: 4 classes of 16x16 RGB images, each a fixed random pattern plus noise. */
function toyImages(classes: number, perClass: number, size: number, seed: number) {
  const rng = createRng(seed);
  const plane = 3 * size * size;
  const patterns = Array.from({ length: classes }, () => Float32Array.from({ length: plane }, () => rng.normal()));
  const images = new Float32Array(classes * perClass * plane);
  const labels = new Int32Array(classes * perClass);
  for (let i = 0; i < labels.length; i++) {
    labels[i] = i % classes;
    for (let k = 0; k < plane; k++) images[i * plane + k] = patterns[labels[i]][k] + 0.5 * rng.normal();
  }
  return { images, labels };
}

/** Trains smallnet with an ArcFace head for `steps` full-batch steps; returns the loss of each step. */
export async function train(backend: Backend, steps: number): Promise<number[]> {
  const classes = 4, size = 16, dim = 32;
  const { images, labels } = toyImages(classes, 8, size, 1);
  const rng = createRng(7);
  const net = smallnet.build({ backend, params: smallnet.params.parse({ inputSize: size, embeddingDim: dim, stages: 2, width: 8 }), rng: rng.fork() });
  const head = arcface.createHead({ backend, numClasses: classes, embeddingDim: dim, params: parseLossParams(arcface, { s: 16, m: 0.3 }), rng: rng.fork() });
  // The optimizer updates the network's parameters and the head's class weights.
  const trainable = [...net.parameters, ...head.parameters].filter((p) => p.tensor.requiresGrad);
  const optimizer = sgd(trainable, { momentum: 0.9, weightDecay: 5e-4 });
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    // Forward and backward in one tidy: it frees every intermediate tensor but the returned loss.
    const loss = tidy(() => {
      const x = tensor(backend, images, [labels.length, 3, size, size]);
      const l = head.forward(net.forward(x, { training: true }), labels);
      backward(l);
      return l;
    });
    optimizer.step(0.05);
    optimizer.zeroGrad();
    losses.push(await loss.item());
    loss.dispose();
  }
  net.dispose();
  head.dispose();
  optimizer.dispose();
  return losses;
}
