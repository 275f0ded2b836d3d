/**
 * The trainer's view of data: a training set of labelled images and verification sets of pairs,
 * both delivered as normalised NCHW float32 batches. Batches are a pure function of (seed, step),
 * so a resumed run sees exactly the batches an uninterrupted one would.
 */
import { createRng, DataError, hashUniform, pcgHash } from '@fr/core';
import { basename, join } from 'node:path';
import { SyntheticFaces, type RgbImage } from '@fr/data';
import { openSource, readVerificationFile, sharpDecoder } from '@fr/data/node';
import type { TrainConfig } from './config.js';

export interface TrainingSet {
  readonly numClasses: number;
  readonly length: number;
  /** [channels, height, width] */
  readonly shape: [number, number, number];
  /** Image i (0 <= i < length) and its label. */
  sample(i: number): Promise<{ image: RgbImage; label: number }>;
  /** What the reader left out and why (hidden or empty class folders). */
  readonly notices?: readonly string[];
}

export interface VerificationSet {
  readonly label: string;
  readonly issame: boolean[];
  /** Number of distinct images (each is embedded once, however many pairs name it). */
  readonly length: number;
  /** Pair p compares images pairImages[2p] and pairImages[2p + 1]. */
  readonly pairImages: Int32Array;
  readonly shape: [number, number, number];
  image(i: number): Promise<RgbImage>;
  /** The file its images are decoded from (each one is checked before training); none when generated. */
  readonly decodedFrom?: string;
}

export interface Batch {
  images: Float32Array;
  labels: Int32Array;
}

/** (x / 255 - 0.5) / 0.5 into NCHW at `offset`, optionally mirrored. */
export function writeNormalized(img: RgbImage, out: Float32Array, offset: number, flip: boolean): void {
  const { width: w, height: h, data } = img;
  const plane = w * h;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (y * w + (flip ? w - 1 - x : x)) * 3;
      const dst = offset + y * w + x;
      out[dst] = data[src] / 127.5 - 1;
      out[dst + plane] = data[src + 1] / 127.5 - 1;
      out[dst + 2 * plane] = data[src + 2] / 127.5 - 1;
    }
  }
}

/** The indices of batch `step`: epochs are seeded permutations, so this needs no state. */
export function batchIndices(seed: number, step: number, batchSize: number, length: number): number[] {
  const out: number[] = [];
  let cachedEpoch = -1;
  let perm: number[] = [];
  for (let k = 0; k < batchSize; k++) {
    const pos = step * batchSize + k;
    const epoch = Math.floor(pos / length);
    if (epoch !== cachedEpoch) {
      perm = createRng(pcgHash((seed ^ pcgHash(epoch + 1)) >>> 0)).shuffle([...Array(length).keys()]);
      cachedEpoch = epoch;
    }
    out.push(perm[pos % length]);
  }
  return out;
}

/** Loads batch `step` of a training set, with seeded horizontal flips. */
export async function loadBatch(set: TrainingSet, seed: number, step: number, batchSize: number, flip: boolean): Promise<Batch> {
  const [c, h, w] = set.shape;
  const images = new Float32Array(batchSize * c * h * w);
  const labels = new Int32Array(batchSize);
  const indices = batchIndices(seed, step, batchSize, set.length);
  for (let k = 0; k < batchSize; k++) {
    const { image, label } = await set.sample(indices[k]);
    if (image.width !== w || image.height !== h) {
      throw new DataError(`training image ${indices[k]} is ${image.width}x${image.height}, the network takes ${w}x${h}`);
    }
    writeNormalized(image, images, k * c * h * w, flip && hashUniform(seed ^ 0x5f1b, step * batchSize + k) < 0.5);
    labels[k] = label;
  }
  return { images, labels };
}

export function syntheticFor(config: TrainConfig, evalSet?: Extract<TrainConfig['data']['eval'][number], { name: 'synthetic' }>): SyntheticFaces {
  const train = config.data.train;
  const trainIdentities = train.name === 'synthetic' ? train.identities : 1;
  if (!evalSet) {
    if (train.name !== 'synthetic') throw new DataError('syntheticFor: the training set is not synthetic');
    return new SyntheticFaces({ seed: train.seed, size: train.size, nuisance: train.nuisance, trainIdentities, imagesPerIdentity: train.imagesPerIdentity });
  }
  // Held-out identities are numbered after the training ones, so the two never overlap.
  return new SyntheticFaces({
    seed: evalSet.seed,
    size: evalSet.size,
    nuisance: evalSet.nuisance,
    trainIdentities,
    testIdentities: evalSet.testIdentities,
    testImagesPerIdentity: evalSet.imagesPerIdentity,
  });
}

export async function openTrainingSet(config: TrainConfig): Promise<TrainingSet> {
  const d = config.data.train;
  switch (d.name) {
    case 'synthetic': {
      const faces = syntheticFor(config);
      return {
        numClasses: d.identities,
        length: faces.trainLength,
        shape: [3, d.size, d.size],
        sample: async (i) => {
          const s = faces.trainSample(i);
          return { image: s.image, label: s.label };
        },
      };
    }
    default:
      return openDatasetFromFiles(d);
  }
}

/** Image folders and RecordIO files, through @fr/data's readers (decoded with sharp). */
async function openDatasetFromFiles(d: Exclude<TrainConfig['data']['train'], { name: 'synthetic' }>): Promise<TrainingSet> {
  const source = await openSource(
    d.name === 'folder' ? { kind: 'folder', root: d.path } : { kind: 'recordio', rec: join(d.path, 'train.rec'), idx: join(d.path, 'train.idx') },
  );
  if (source.length === 0) throw new DataError(`training data ${d.path} holds no images`);
  const first = await source.load(0);
  const [h, w] = [first.image.height, first.image.width];
  // Every image must have the first one's size: a batch is one block of [3, h, w] images.
  const sample = async (i: number) => {
    const s = await source.load(i);
    if (s.image.height !== h || s.image.width !== w) {
      throw new DataError(`training data ${d.path}: image ${i} (${source.describe?.(i) ?? `index ${i}`}) is ${s.image.width}x${s.image.height}, the first is ${w}x${h}; resize the set to one size`);
    }
    return s;
  };
  return { numClasses: source.numClasses, length: source.length, shape: [3, h, w], sample, notices: source.notices ?? [] };
}

export async function openVerificationSets(config: TrainConfig): Promise<VerificationSet[]> {
  const sets: VerificationSet[] = [];
  for (const e of config.data.eval) {
    if (e.name === 'synthetic') {
      const faces = syntheticFor(config, e);
      const pairs = faces.pairs({ perFold: e.pairsPerFold });
      const unique = new Map<string, { identity: number; index: number }>();
      const keyOf = (r: { identity: number; index: number }) => `${r.identity}:${r.index}`;
      for (const p of pairs) for (const r of [p.a, p.b]) unique.set(keyOf(r), r);
      const refs = [...unique.values()];
      const position = new Map(refs.map((r, i) => [keyOf(r), i]));
      sets.push({
        label: e.label,
        issame: pairs.map((p) => p.same),
        length: refs.length,
        pairImages: Int32Array.from(pairs.flatMap((p) => [position.get(keyOf(p.a))!, position.get(keyOf(p.b))!])),
        shape: [3, e.size, e.size],
        image: async (i) => faces.sample(refs[i].identity, refs[i].index).image,
      });
    } else {
      sets.push(await openBinSet(e.path, e.label));
    }
  }
  return sets;
}

/** An insightface verification .bin: pair p is images 2p and 2p+1, decoded when embedded. */
async function openBinSet(path: string, label?: string): Promise<VerificationSet> {
  const bin = await readVerificationFile(path);
  if (bin.images.length === 0) throw new DataError(`verification file ${path} holds no images`);
  const first = await sharpDecoder.decode(bin.images[0], `${path} image 0`);
  return {
    label: label ?? basename(path, '.bin'),
    issame: bin.issame,
    length: bin.images.length,
    pairImages: Int32Array.from(bin.images.keys()),
    shape: [3, first.height, first.width],
    image: (i) => sharpDecoder.decode(bin.images[i], `${path} image ${i}`),
    decodedFrom: path,
  };
}
