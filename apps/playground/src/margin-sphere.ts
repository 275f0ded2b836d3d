/**
 * The margin on the 3-d sphere: around each class centre, the boundary of the cap where that class's
 * target logit (margin included) beats the plain logit of every other class, traced along geodesics
 * leaving the centre. Between the boundaries of two neighbouring classes lies the margin band, as
 * between the arcs on the 2-d circle (margin.ts).
 */
import type { MarginTransform } from '@fr/core';
import { boundaryAngle } from './margin.js';

export type Point3 = [number, number, number];

export interface MarginRegion {
  cls: number;
  /** Unit points on the sphere, a closed loop in order; empty when the class wins nowhere. */
  boundary: Point3[];
}

export interface SphereMarginPicture {
  regions: MarginRegion[];
  /** Per class: the band (radians) between it and its nearest neighbour, on the great circle through both centres. */
  gaps: number[];
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** Two unit vectors orthogonal to the unit vector c and to each other: the tangent plane at c. */
function tangentBasis(c: Point3): [Point3, Point3] {
  const axis: Point3 = Math.abs(c[0]) < 0.6 ? [1, 0, 0] : [0, 1, 0];
  const along = dot(axis, c);
  const u: Point3 = [axis[0] - along * c[0], axis[1] - along * c[1], axis[2] - along * c[2]];
  const n = Math.hypot(...u);
  u[0] /= n; u[1] /= n; u[2] /= n;
  return [u, [c[1] * u[2] - c[2] * u[1], c[2] * u[0] - c[0] * u[2], c[0] * u[1] - c[1] * u[0]]];
}

/**
 * Boundaries and gaps for unit class directions in 3-d ([classes, 3], row-major), `rays` geodesics
 * per class. Along each geodesic the first angle where the class stops winning is bracketed in steps
 * of 3 degrees, then bisected.
 */
export function sphereMargin(directions: Float64Array, numClasses: number, transform: MarginTransform | null, rays = 60): SphereMarginPicture {
  if (numClasses < 2) return { regions: [], gaps: [] };
  const centre = (c: number): Point3 => [directions[c * 3], directions[c * 3 + 1], directions[c * 3 + 2]];
  const u = transform?.uniforms ?? {};
  const target = (z: number) => (transform ? transform.target(z, u, { target: z, context: 0 }) : z);
  const other = (z: number, t: number) => (transform ? transform.other(z, u, { target: t, context: 0 }) : z);
  const cosTo = (x: Point3, c: number) => x[0] * directions[c * 3] + x[1] * directions[c * 3 + 1] + x[2] * directions[c * 3 + 2];
  const wins = (c: number, x: Point3): boolean => {
    const z = cosTo(x, c);
    const logit = target(z);
    for (let j = 0; j < numClasses; j++) if (j !== c && other(cosTo(x, j), z) >= logit) return false;
    return true;
  };
  const regions: MarginRegion[] = [];
  for (let c = 0; c < numClasses; c++) {
    const w = centre(c);
    const [p, q] = tangentBasis(w);
    const boundary: Point3[] = [];
    if (!wins(c, w)) {
      regions.push({ cls: c, boundary });
      continue;
    }
    for (let k = 0; k < rays; k++) {
      const psi = (k / rays) * 2 * Math.PI;
      const dir: Point3 = [p[0] * Math.cos(psi) + q[0] * Math.sin(psi), p[1] * Math.cos(psi) + q[1] * Math.sin(psi), p[2] * Math.cos(psi) + q[2] * Math.sin(psi)];
      const at = (phi: number): Point3 => [w[0] * Math.cos(phi) + dir[0] * Math.sin(phi), w[1] * Math.cos(phi) + dir[1] * Math.sin(phi), w[2] * Math.cos(phi) + dir[2] * Math.sin(phi)];
      const step = Math.PI / 60;
      let lo = 0, hi = Math.PI;
      for (let phi = step; phi < Math.PI; phi += step) {
        if (!wins(c, at(phi))) {
          hi = phi;
          break;
        }
        lo = phi;
      }
      for (let i = 0; i < 20; i++) {
        const mid = (lo + hi) / 2;
        if (wins(c, at(mid))) lo = mid;
        else hi = mid;
      }
      boundary.push(at(lo));
    }
    regions.push({ cls: c, boundary });
  }
  const gaps = Array.from({ length: numClasses }, (_, c) => {
    let nearest = -1;
    for (let j = 0; j < numClasses; j++) if (j !== c) nearest = Math.max(nearest, dot(centre(c), centre(j)));
    const delta = Math.acos(Math.min(1, Math.max(-1, nearest)));
    // Both classes share the transform, so each one's boundary toward the other sits as far from its centre.
    return delta - 2 * boundaryAngle(transform, delta);
  });
  return { regions, gaps };
}
