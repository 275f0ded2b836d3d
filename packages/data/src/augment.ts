/** Augmentation and normalisation into NCHW float32: (x/255 - 0.5)/0.5, as insightface. */
import { createRng, DataError, pcgHash } from '@fr/core';
import type { RgbImage } from './image.js';

export interface AugmentOptions {
  /** Probability of a horizontal flip. Default 0.5. */
  flip?: number;
  /** Random translation crop: pad by this many pixels (black) and crop back at a random offset. Default 0. */
  cropPad?: number;
  /** Colour jitter strength: brightness, contrast and saturation factors in [1 - j, 1 + j]. Default 0. */
  colorJitter?: number;
}

/** A seed for (seed, epoch, sample): the same sample gets the same augmentation wherever it is decoded. */
export function sampleSeed(seed: number, epoch: number, index: number): number {
  return pcgHash((pcgHash((pcgHash(seed >>> 0) ^ epoch) >>> 0) ^ index) >>> 0);
}

/**
 * Writes one augmented, normalised image into `out` at `offset` as CHW. Every random choice comes
 * from `seed`, so results do not depend on which worker ran it.
 */
export function augmentInto(img: RgbImage, out: Float32Array, offset: number, seed: number, o: AugmentOptions = {}): void {
  const { width: W, height: H, data } = img;
  if (offset + 3 * W * H > out.length) throw new DataError(`augmentInto: a ${W}x${H} image does not fit at ${offset} in ${out.length} values`);
  const rng = createRng(seed);
  const flip = rng.uniform() < (o.flip ?? 0.5);
  const pad = o.cropPad ?? 0;
  const ox = pad > 0 ? rng.int(2 * pad + 1) - pad : 0, oy = pad > 0 ? rng.int(2 * pad + 1) - pad : 0;
  const j = o.colorJitter ?? 0;
  const bright = 1 + j * (2 * rng.uniform() - 1), contrast = 1 + j * (2 * rng.uniform() - 1), sat = 1 + j * (2 * rng.uniform() - 1);
  const plane = W * H;
  let mean = 0;
  if (j > 0) { for (let i = 0; i < data.length; i++) mean += data[i]; mean /= data.length; }
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const sx0 = x + ox, sy = y + oy;
      const sx = flip ? W - 1 - sx0 : sx0;
      let r = 0, g = 0, b = 0;
      if (sx >= 0 && sy >= 0 && sx < W && sy < H) {
        const k = (sy * W + sx) * 3;
        r = data[k]; g = data[k + 1]; b = data[k + 2];
        if (j > 0) {
          const grey = 0.299 * r + 0.587 * g + 0.114 * b;
          r = grey + (r - grey) * sat; g = grey + (g - grey) * sat; b = grey + (b - grey) * sat;
          r = mean + (r * bright - mean) * contrast; g = mean + (g * bright - mean) * contrast; b = mean + (b * bright - mean) * contrast;
          r = Math.min(255, Math.max(0, r)); g = Math.min(255, Math.max(0, g)); b = Math.min(255, Math.max(0, b));
        }
      }
      const p = offset + y * W + x;
      out[p] = r / 127.5 - 1;
      out[p + plane] = g / 127.5 - 1;
      out[p + 2 * plane] = b / 127.5 - 1;
    }
  }
}

/** (x/255 - 0.5)/0.5 into CHW without augmentation (evaluation). */
export function normalizeInto(img: RgbImage, out: Float32Array, offset: number): void {
  augmentInto(img, out, offset, 0, { flip: 0 });
}

/** Permutation of 0..n-1 for an epoch, from the loader seed. */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  const idx = Array.from({ length: n }, (_, i) => i);
  createRng(sampleSeed(seed, epoch, 0x5eed)).shuffle(idx);
  return Int32Array.from(idx);
}
