import { DataError, FrError } from '@fr/core';
import { type AugmentOptions, augmentInto, sampleSeed } from '../augment.js';
import { checkImage } from '../image.js';
import type { OpenSource } from './sources.js';

export interface BatchJob { indices: number[]; epoch: number }
export interface BatchResult {
  images: Float32Array;
  labels: Int32Array;
  /** Sample indices that made it into the batch, in order. */
  indices: Int32Array;
  /** Bad samples dropped (only when skipping). */
  errors: { index: number; message: string }[];
}

/** Decodes, augments and normalises one batch. Identical wherever it runs (main thread or worker). */
export async function runBatch(src: OpenSource, job: BatchJob, o: { seed: number; size: number; augment: AugmentOptions; skipBad: boolean }): Promise<BatchResult> {
  const plane = 3 * o.size * o.size;
  const images = new Float32Array(job.indices.length * plane);
  const labels: number[] = [], kept: number[] = [], errors: BatchResult['errors'] = [];
  for (const i of job.indices) {
    try {
      const { image, label } = await src.load(i);
      checkImage(image, `sample ${i}`);
      if (image.width !== o.size || image.height !== o.size) throw new DataError(`sample ${i}: image is ${image.width}x${image.height}, the loader expects ${o.size}x${o.size} (align or resize first)`);
      augmentInto(image, images, kept.length * plane, sampleSeed(o.seed, job.epoch, i), o.augment);
      labels.push(label);
      kept.push(i);
    } catch (e) {
      if (!o.skipBad || !(e instanceof FrError)) throw e;
      errors.push({ index: i, message: (e as Error).message });
    }
  }
  return { images: images.slice(0, kept.length * plane), labels: Int32Array.from(labels), indices: Int32Array.from(kept), errors };
}
