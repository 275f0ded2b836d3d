import type { RgbImage } from '../src/index.js';

/** (x/255 - 0.5)/0.5 pixels, mean-centred and L2-normalised: the raw-pixel embedding. */
export function rawPixelEmbedding(img: RgbImage): Float32Array {
  const v = new Float32Array(img.data.length);
  let mean = 0;
  for (let i = 0; i < v.length; i++) { v[i] = (img.data[i] / 255 - 0.5) / 0.5; mean += v[i]; }
  mean /= v.length;
  let ss = 0;
  for (let i = 0; i < v.length; i++) { v[i] -= mean; ss += v[i] * v[i]; }
  const inv = 1 / Math.sqrt(ss || 1);
  for (let i = 0; i < v.length; i++) v[i] *= inv;
  return v;
}
