/**
 * The margin as a picture: on the 2-d circle, the arc around each class centre where that class's
 * target logit (with the margin) beats the plain logit of its neighbouring class. Between two
 * neighbours' arcs lies the margin, the band where neither wins as a target: for ArcFace its width
 * is m exactly, for CosFace it depends on where the centres sit, and without a margin it is zero.
 */
import type { MarginTransform } from '@fr/core';

export interface MarginArc {
  /** The class this arc belongs to. */
  cls: number;
  /** Start and end angle (radians, counter-clockwise from the x axis) of its decision region. */
  from: number;
  to: number;
}

export interface MarginPicture {
  arcs: MarginArc[];
  /** Width (radians) of the band between each pair of neighbouring arcs, in circle order. */
  gaps: number[];
}

const TWO_PI = 2 * Math.PI;
const angleBetween = (a: number, b: number) => {
  const d = Math.abs(a - b) % TWO_PI;
  return d > Math.PI ? TWO_PI - d : d;
};

/**
 * How far (radians) from its own centre toward a neighbour `delta` radians away a class keeps winning:
 * the phi in [0, delta] where target(cos phi) = other(cos(angle to the neighbour)). Without a
 * transform both logits are the cosine and the answer is delta / 2.
 */
export function boundaryAngle(transform: MarginTransform | null, delta: number): number {
  if (!transform) return delta / 2;
  const u = transform.uniforms;
  const diff = (phi: number) => {
    const z = Math.cos(phi);
    return transform.target(z, u, { target: z, context: 0 }) - transform.other(Math.cos(angleBetween(phi, delta)), u, { target: z, context: 0 });
  };
  let lo = 0, hi = delta;
  // The margin is wider than the gap between the centres: the class wins nowhere toward this neighbour.
  if (diff(lo) <= 0) return 0;
  if (diff(hi) >= 0) return delta;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (diff(mid) > 0) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Arcs and gaps for unit class directions in 2-d ([classes, 2], row-major). */
export function marginArcs(directions: Float64Array, numClasses: number, transform: MarginTransform | null): MarginPicture {
  if (numClasses < 2) return { arcs: [], gaps: [] };
  const order = Array.from({ length: numClasses }, (_, c) => ({ c, a: Math.atan2(directions[c * 2 + 1], directions[c * 2]) })).sort((x, y) => x.a - y.a);
  const n = order.length;
  // Counter-clockwise distance from each class to the next one in circle order.
  const next = order.map((o, i) => {
    const d = order[(i + 1) % n].a - o.a;
    return d <= 0 ? d + TWO_PI : d;
  });
  const arcs: MarginArc[] = order.map((o, i) => {
    const ahead = boundaryAngle(transform, next[i]);
    const behind = boundaryAngle(transform, next[(i - 1 + n) % n]);
    return { cls: o.c, from: o.a - behind, to: o.a + ahead };
  });
  const gaps = arcs.map((arc, i) => {
    const following = arcs[(i + 1) % n];
    let gap = following.from - arc.to;
    while (gap < -Math.PI) gap += TWO_PI;
    while (gap > Math.PI) gap -= TWO_PI;
    return gap;
  });
  return { arcs, gaps };
}
