/** Five-point face alignment: a least-squares similarity transform and a bilinear warp (as cv2.warpAffine). */
import { DataError } from '@fr/core';
import { createImage, type RgbImage } from './image.js';

/** insightface's 112x112 template: left eye, right eye, nose tip, left and right mouth corner. */
export const ARCFACE_TEMPLATE_112: readonly number[] = [38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041];

/** 2x3 affine matrix [a, b, tx, c, d, ty]: x' = a x + b y + tx, y' = c x + d y + ty. */
export type Affine = [number, number, number, number, number, number];

/**
 * The similarity transform (rotation, uniform scale, translation; no reflection) minimising the
 * squared distance from transformed `src` to `dst` (Umeyama 1991 in 2-D, where the SVD reduces to
 * the complex-number least squares). Points are flat [x0, y0, x1, y1, ...].
 */
export function similarityTransform(src: ArrayLike<number>, dst: ArrayLike<number>): Affine {
  const n = src.length / 2;
  if (src.length !== dst.length || n < 2 || !Number.isInteger(n)) throw new DataError(`similarityTransform: need matching point lists of at least 2 points, got ${src.length / 2} and ${dst.length / 2}`);
  let sx = 0, sy = 0, dx = 0, dy = 0;
  for (let i = 0; i < n; i++) { sx += src[2 * i]; sy += src[2 * i + 1]; dx += dst[2 * i]; dy += dst[2 * i + 1]; }
  sx /= n; sy /= n; dx /= n; dy /= n;
  let a = 0, b = 0, v = 0;
  for (let i = 0; i < n; i++) {
    const x = src[2 * i] - sx, y = src[2 * i + 1] - sy, u = dst[2 * i] - dx, w = dst[2 * i + 1] - dy;
    a += x * u + y * w;
    b += x * w - y * u;
    v += x * x + y * y;
  }
  if (v === 0) throw new DataError('similarityTransform: source points coincide');
  const c = a / v, s = b / v;
  return [c, -s, dx - (c * sx - s * sy), s, c, dy - (s * sx + c * sy)];
}

export function applyAffine(m: Affine, points: ArrayLike<number>): Float64Array {
  const out = new Float64Array(points.length);
  for (let i = 0; i < points.length; i += 2) {
    out[i] = m[0] * points[i] + m[1] * points[i + 1] + m[2];
    out[i + 1] = m[3] * points[i] + m[4] * points[i + 1] + m[5];
  }
  return out;
}

export function invertAffine(m: Affine): Affine {
  const det = m[0] * m[4] - m[1] * m[3];
  if (det === 0) throw new DataError('invertAffine: singular transform');
  const a = m[4] / det, b = -m[1] / det, c = -m[3] / det, d = m[0] / det;
  return [a, b, -(a * m[2] + b * m[5]), c, d, -(c * m[2] + d * m[5])];
}

/**
 * Output pixel (x, y) takes the bilinear sample of the source at inverse(m)(x, y); pixel centres at
 * integer coordinates; outside the source is black (cv2.warpAffine's constant border 0).
 */
export function warpAffine(img: RgbImage, m: Affine, width: number, height: number): RgbImage {
  const inv = invertAffine(m);
  const out = createImage(width, height);
  const { width: W, height: H, data } = img;
  const o = out.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sx = inv[0] * x + inv[1] * y + inv[2], sy = inv[3] * x + inv[4] * y + inv[5];
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      const k = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const at = (xx: number, yy: number) => (xx >= 0 && yy >= 0 && xx < W && yy < H ? data[(yy * W + xx) * 3 + c] : 0);
        const v = (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) + (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
        o[k + c] = Math.round(v);
      }
    }
  }
  return out;
}

/** Aligns a face from its five landmarks to the 112x112 template (scaled for other sizes). */
export function alignFace(img: RgbImage, landmarks: ArrayLike<number>, size = 112): RgbImage {
  const dst = ARCFACE_TEMPLATE_112.map((v) => (v * size) / 112);
  return warpAffine(img, similarityTransform(landmarks, dst), size, size);
}
