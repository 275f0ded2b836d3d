import { describe, expect, it } from 'vitest';
import { type Affine, alignFace, applyAffine, ARCFACE_TEMPLATE_112, invertAffine, similarityTransform, SyntheticFaces, warpAffine } from '../src/index.js';

describe('five-point alignment', () => {
  it('recovers a known similarity transform exactly from exact points', () => {
    const ang = 0.3, s = 1.7;
    const m: Affine = [s * Math.cos(ang), -s * Math.sin(ang), 12, s * Math.sin(ang), s * Math.cos(ang), -5];
    const dst = applyAffine(m, ARCFACE_TEMPLATE_112);
    const got = similarityTransform(ARCFACE_TEMPLATE_112, dst);
    got.forEach((v, i) => expect(v).toBeCloseTo(m[i], 9));
  });

  it('is the least-squares fit with noisy points (residual is orthogonal to every direction of the fit)', () => {
    const src = ARCFACE_TEMPLATE_112;
    const dst = src.map((v, i) => v * 0.5 + (i % 2 ? 3 : -2) + Math.sin(i * 7) * 0.8);
    const m = similarityTransform(src, dst);
    const err = (mm: Affine) => applyAffine(mm, src).reduce((a, v, i) => a + (v - dst[i]) ** 2, 0);
    const base = err(m);
    for (let k = 0; k < 6; k++) {
      for (const d of [1e-4, -1e-4]) {
        // Perturb within the similarity family: (a, b) = (c, -s) pairs, translations.
        const p: Affine = [...m];
        if (k === 0) { p[0] += d; p[4] += d; } else if (k === 1) { p[1] -= d; p[3] += d; } else if (k === 2) p[2] += d; else if (k === 3) p[5] += d;
        expect(err(p)).toBeGreaterThanOrEqual(base - 1e-12);
      }
    }
  });

  it('aligns a face warped by a known transform, and warping back recovers the image', () => {
    const face = new SyntheticFaces({ size: 112, nuisance: 0, seed: 5 }).sample(3, 0);
    const ang = -0.25, s = 0.9;
    const m: Affine = [s * Math.cos(ang), -s * Math.sin(ang), 20, s * Math.sin(ang), s * Math.cos(ang), 14];
    const warped = warpAffine(face.image, m, 140, 140);
    const lm = applyAffine(m, face.landmarks);
    const est = similarityTransform(lm, face.landmarks);
    const inv = invertAffine(m);
    est.forEach((v, i) => expect(v).toBeCloseTo(inv[i], 6));
    const back = warpAffine(warped, est, 112, 112);
    // Compare the interior (two bilinear resamplings blur edges a little).
    let diff = 0, n = 0;
    for (let y = 20; y < 92; y++) for (let x = 20; x < 92; x++) for (let c = 0; c < 3; c++) {
      diff += Math.abs(back.data[(y * 112 + x) * 3 + c] - face.image.data[(y * 112 + x) * 3 + c]); n++;
    }
    expect(diff / n).toBeLessThan(6);
    // alignFace puts the landmarks on the template.
    const aligned = similarityTransform(lm, ARCFACE_TEMPLATE_112);
    const placed = applyAffine(aligned, lm);
    let worst = 0;
    placed.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - ARCFACE_TEMPLATE_112[i])); });
    expect(worst).toBeLessThan(6);
    expect(alignFace(warped, lm).width).toBe(112);
  });
});
