import { describe, expect, it } from 'vitest';
import { SyntheticFaces } from '../src/index.js';

describe('synthetic faces', () => {
  const set = new SyntheticFaces({ seed: 3, size: 32, trainIdentities: 50, testIdentities: 100, testImagesPerIdentity: 6 });

  it('is a pure function of (seed, identity, index)', () => {
    const a = set.sample(7, 2).image.data;
    const b = new SyntheticFaces({ seed: 3, size: 32 }).sample(7, 2).image.data;
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const c = new SyntheticFaces({ seed: 4, size: 32 }).sample(7, 2).image.data;
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
    expect(Buffer.from(set.sample(7, 3).image.data).equals(Buffer.from(a))).toBe(false);
  });

  it('labels training images identity-major and refuses indices outside the set', () => {
    expect(set.trainLength).toBe(50 * 20);
    expect(set.trainSample(0).label).toBe(0);
    expect(set.trainSample(41).label).toBe(2);
    expect(() => set.trainSample(1000)).toThrow(/training index 1000 outside 0..999/);
  });

  it('makes LFW-style folds: same pairs then different pairs, identity-disjoint folds over test identities only', () => {
    const pairs = set.pairs({ perFold: 20 });
    expect(pairs).toHaveLength(10 * 40);
    for (let f = 0; f < 10; f++) {
      const fold = pairs.slice(f * 40, (f + 1) * 40);
      expect(fold.every((p) => p.fold === f)).toBe(true);
      expect(fold.slice(0, 20).every((p) => p.same && p.a.identity === p.b.identity && p.a.index !== p.b.index)).toBe(true);
      expect(fold.slice(20).every((p) => !p.same && p.a.identity !== p.b.identity)).toBe(true);
    }
    const ids = pairs.flatMap((p) => [p.a.identity, p.b.identity]);
    expect(Math.min(...ids)).toBeGreaterThanOrEqual(50);
    expect(Math.max(...ids)).toBeLessThan(150);
    const foldOf = new Map<number, number>();
    for (const p of pairs) for (const id of [p.a.identity, p.b.identity]) {
      expect(foldOf.get(id) ?? p.fold).toBe(p.fold);
      foldOf.set(id, p.fold);
    }
    expect(set.pairs({ perFold: 20 })).toEqual(pairs);
  });

  it('refuses more pairs per fold than the test identities can make, instead of searching forever', () => {
    const small = new SyntheticFaces({ seed: 3, size: 32, testIdentities: 50, testImagesPerIdentity: 10 });
    // 5 identities per fold with 10 images: 5 * 45 = 225 distinct same pairs.
    expect(() => small.pairs({ perFold: 300 })).toThrow(/300 pairs per fold need more test data: 50 test identities make 5 per fold with 10 images each, 225 distinct same pairs/);
    expect(small.pairs({ perFold: 225 }).filter((p) => p.same)).toHaveLength(2250);
  });

  it('default pairs are 10 folds of 300 + 300', () => {
    const pairs = new SyntheticFaces().pairs();
    expect(pairs).toHaveLength(6000);
    expect(pairs.filter((p) => p.same)).toHaveLength(3000);
  });

  it('places landmarks on the face: eyes above the nose above the mouth, inside the image', () => {
    const s = new SyntheticFaces({ size: 112, nuisance: 0 }).sample(0, 0);
    const l = s.landmarks;
    expect(l[0]).toBeLessThan(l[2]);
    expect(l[5]).toBeGreaterThan(l[1]);
    expect(l[7]).toBeGreaterThan(l[5]);
    for (const v of l) { expect(v).toBeGreaterThan(0); expect(v).toBeLessThan(112); }
    // The eyes are drawn where the landmarks say: the pupil pixel is dark.
    const px = (x: number, y: number) => s.image.data[(Math.round(y) * 112 + Math.round(x)) * 3];
    expect(px(l[0], l[1])).toBeLessThan(60);
    expect(px(l[2], l[3])).toBeLessThan(60);
  });

  it('is fast: well over a thousand 32x32 images per second', () => {
    const fast = new SyntheticFaces({ seed: 9, size: 32 });
    const t0 = performance.now();
    for (let i = 0; i < 500; i++) fast.trainSample(i);
    const perSec = 500 / ((performance.now() - t0) / 1000);
    expect(perSec).toBeGreaterThan(500); // conservative on a shared machine; ~2300/s measured alone
  });

  it('raw pixels separate identities only weakly (a few hundred pairs)', () => {
    const s = new SyntheticFaces({ seed: 0, size: 32 });
    const pairs = s.pairs({ perFold: 30 });
    const emb = (id: number, k: number) => {
      const d = s.sample(id, k).image.data;
      const v = Float64Array.from(d, (x) => x / 127.5 - 1);
      const m = v.reduce((a, b) => a + b, 0) / v.length;
      let ss = 0;
      for (let i = 0; i < v.length; i++) { v[i] -= m; ss += v[i] * v[i]; }
      return v.map((x) => x / Math.sqrt(ss));
    };
    const cos = pairs.map((p) => {
      const a = emb(p.a.identity, p.a.index), b = emb(p.b.identity, p.b.index);
      return a.reduce((acc, x, i) => acc + x * b[i], 0);
    });
    // Best single threshold on all pairs (an optimistic bound of the 10-fold accuracy).
    let best = 0;
    for (const t of cos) {
      const acc = pairs.filter((p, i) => (cos[i] >= t) === p.same).length / pairs.length;
      best = Math.max(best, acc);
    }
    expect(best).toBeGreaterThan(0.55);
    expect(best).toBeLessThan(0.8);
  });
});
