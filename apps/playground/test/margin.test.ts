import { arcfaceTransform } from '@fr/arcface';
import { cosfaceTransform } from '@fr/cosface';
import { describe, expect, it } from 'vitest';
import { boundaryAngle, marginArcs } from '../src/margin.js';

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
