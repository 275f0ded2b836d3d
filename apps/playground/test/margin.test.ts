import { arcfaceTransform } from '@fr/arcface';
import { cosfaceTransform } from '@fr/cosface';
import { describe, expect, it } from 'vitest';
import { boundaryAngle, marginArcs } from '../src/margin.js';
import { sphereMargin } from '../src/margin-sphere.js';

const arc = arcfaceTransform({ s: 16, m: 0.5, gradient: 'detached' });

describe('the margin drawn on the circle', () => {
  it("ArcFace's boundary toward a neighbour delta away sits at (delta - m) / 2", () => {
    expect(boundaryAngle(arc, 1.2)).toBeCloseTo(0.35, 9);
    expect(boundaryAngle(arc, 2)).toBeCloseTo(0.75, 9);
    // The margin is wider than the gap between the centres: the class wins nowhere on that side.
    expect(boundaryAngle(arc, 0.3)).toBe(0);
  });

  it("CosFace's boundary solves cos(phi) - m = cos(delta - phi); plain cosine logits meet halfway", () => {
    const phi = boundaryAngle(cosfaceTransform({ s: 16, m: 0.35 }), 1.5);
    expect(Math.cos(phi) - 0.35).toBeCloseTo(Math.cos(1.5 - phi), 9);
    expect(boundaryAngle(null, 1.5)).toBe(0.75);
  });

  it('four centres a right angle apart: every gap is m for ArcFace and zero without a margin', () => {
    const dirs = Float64Array.from([1, 0, 0, 1, -1, 0, 0, -1]);
    const withMargin = marginArcs(dirs, 4, arc);
    expect(withMargin.gaps).toHaveLength(4);
    for (const g of withMargin.gaps) expect(g).toBeCloseTo(0.5, 9);
    for (const a of withMargin.arcs) expect(a.to - a.from).toBeCloseTo(Math.PI / 2 - 0.5, 9);
    for (const g of marginArcs(dirs, 4, null).gaps) expect(g).toBeCloseTo(0, 9);
  });
});

describe('the margin drawn on the sphere', () => {
  // Six centres on the coordinate axes: each one's nearest neighbours are 90 degrees away.
  const axes = Float64Array.from([1, 0, 0, -1, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 1, 0, 0, -1]);

  it("ArcFace: the gap toward the nearest neighbour is m, and each boundary point is where theta + m meets the nearest other angle", () => {
    const picture = sphereMargin(axes, 6, arc, 36);
    expect(picture.gaps).toHaveLength(6);
    for (const g of picture.gaps) expect(g).toBeCloseTo(0.5, 9);
    for (const region of picture.regions) {
      expect(region.boundary).toHaveLength(36);
      const w = Array.from(axes.subarray(region.cls * 3, region.cls * 3 + 3));
      for (const x of region.boundary) {
        expect(Math.hypot(...x)).toBeCloseTo(1, 9);
        const theta = Math.acos(x[0] * w[0] + x[1] * w[1] + x[2] * w[2]);
        let closest = Infinity;
        for (let j = 0; j < 6; j++) {
          if (j === region.cls) continue;
          closest = Math.min(closest, Math.acos(Math.max(-1, Math.min(1, x[0] * axes[j * 3] + x[1] * axes[j * 3 + 1] + x[2] * axes[j * 3 + 2]))));
        }
        expect(theta + 0.5).toBeCloseTo(closest, 5);
      }
    }
  });

  it('without a margin the regions meet: zero gap, boundaries equidistant from two centres', () => {
    const picture = sphereMargin(axes, 6, null, 12);
    for (const g of picture.gaps) expect(g).toBeCloseTo(0, 9);
    // Toward the +y neighbour, +x's boundary is the 45-degree point.
    const [x] = picture.regions[0].boundary.filter((pt) => Math.abs(pt[2]) < 1e-6 && pt[1] > 0);
    expect(x[0]).toBeCloseTo(Math.SQRT1_2, 5);
    expect(x[1]).toBeCloseTo(Math.SQRT1_2, 5);
  });

  it('a margin wider than the gap between two centres leaves a class no region toward it, and fewer than two classes draw nothing', () => {
    const close = Float64Array.from([1, 0, 0, Math.cos(0.3), Math.sin(0.3), 0]);
    const picture = sphereMargin(close, 2, arc, 8);
    for (const g of picture.gaps) expect(g).toBeCloseTo(0.3, 9);
    expect(picture.regions.map((r) => r.boundary.length)).toEqual([0, 0]);
    expect(sphereMargin(axes, 1, arc).regions).toEqual([]);
  });
});
