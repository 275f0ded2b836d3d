/**
 * The values a README block may take as given (`// given: backend, embeddings, labels`): small, real and
 * seeded, so a block that names them runs as written.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createCpuBackend } from '@fr/backend-cpu';
import { arcface } from '@fr/arcface';
import { createRng, parseLossParams, tensor } from '@fr/core';
import { mobilefacenet } from '@fr/mobilefacenet';

const seeded = createRng(7);
const normals = (n: number) => Float32Array.from({ length: n }, () => seeded.normal());

export const backend = createCpuBackend();
/** Two devices for the sharded head (two CPU backends here). */
export const gpus = [backend, createCpuBackend()];
export const numClasses = 10;
export const embeddingDim = 512;
export const rng = createRng(0);
/** A batch of 4 embeddings of 512 values (a tensor that receives a gradient) and their labels. */
export const embeddings = tensor(backend, normals(4 * embeddingDim), [4, embeddingDim], { requiresGrad: true, name: 'embeddings' });
export const labels = Int32Array.of(0, 3, 7, 9);
/** Two 112 x 112 RGB images, NCHW. */
export const images = tensor(backend, normals(2 * 3 * 112 * 112), [2, 3, 112, 112], { name: 'images' });
/** A loss and its parameters. */
export const loss = arcface;
export const params = parseLossParams(arcface, {});
/** A backbone (MobileFaceNet) on `backend`. */
export const backbone = mobilefacenet.build({ backend, params: mobilefacenet.params.parse({}), rng: createRng(1) });
/** A verification set: 600 pairs (rows 2p, 2p + 1), the embeddings of the flipped images, and which pairs match. */
const pairs = 600;
const base = normals(2 * pairs * embeddingDim);
export const issame = Array.from({ length: pairs }, (_, p) => p % 2 === 0);
// A matching pair's second row is its first plus noise, so the accuracy means something.
for (let p = 0; p < pairs; p++) {
  if (!issame[p]) continue;
  for (let j = 0; j < embeddingDim; j++) base[(2 * p + 1) * embeddingDim + j] = base[2 * p * embeddingDim + j]! + 0.3 * seeded.normal();
}
export const pairEmbeddings = base;
export const pairEmbeddingsOfFlipped = Float32Array.from(base, (v) => v + 0.05 * seeded.normal());
/** The reference cases of the example plugin (cases/*.json), as parsed JSON. */
const casesDir = new URL('../../../examples/third-party-loss/cases/', import.meta.url);
export const cases: unknown[] = readdirSync(casesDir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(new URL(f, casesDir), 'utf8')));
