/**
 * A transform's `otherThreshold` declaration is what the SIMD margin loss runs instead of `other`
 * and `otherGrad`, so, as `otherLinear` (src/linear-other.ts), it is checked against them before it
 * is trusted: over rows of several targets and contexts, at scores across [-2, 2] and at each row's
 * threshold and its float64 neighbours, where the mask flips.
 */
import { type MarginTransform, type RowContext, type ThresholdOther } from '@fr/core';
import { checkClampedLinear, failure, float32Bounds, linearOtherSlope, probeDeclaration } from './linear-other.js';

export function thresholdOtherValue(f: ThresholdOther, z: number, thr: number, context: number): number {
  const c = Math.min(Math.max(z, f.lo), f.hi);
  return c > thr ? f.scale * c * (context + c) : f.scale * c;
}

export function thresholdOtherSlope(f: ThresholdOther, z: number, thr: number, context: number): number {
  if (!(z >= f.lo && z <= f.hi)) return linearOtherSlope(f, z);
  return z > thr ? f.scale * (context + 2 * z) : f.slope;
}

/**
 * The float32 bound the kernel compares float32 scores with: c > thr exactly when c > the largest
 * float32 at or below thr. A NaN threshold (no target in this shard, for CurricularFace) has no
 * score above it: +Infinity.
 */
export function float32AtOrBelow(thr: number): number {
  return Number.isNaN(thr) ? Infinity : float32Bounds(-Infinity, thr)[1];
}

const PROBE_ROWS: RowContext[] = [
  { target: 0.3, context: 0 }, { target: -0.8, context: 2.5 }, { target: Number.NaN, context: -1 }, { target: 0.97, context: 0.37 },
  { target: -1, context: 0.1 }, { target: 1, context: 0.6 }, { target: 0.05, context: -0.4 },
];

/** Throws where `t.otherThreshold` disagrees with `t.other` / `t.otherGrad` (or is malformed). */
export function checkThresholdOther(t: MarginTransform, f: ThresholdOther): void {
  const fail = failure(t, 'otherThreshold', f);
  checkClampedLinear(f, fail);
  if (typeof f.threshold !== 'function') fail(`: threshold must be a function of (uniforms, row), got ${typeof f.threshold}`);
  if (t.contextGradient) fail('treats row.context as a constant, but the transform has contextGradient');
  probeDeclaration(t, f, fail, PROBE_ROWS, (row) => {
    const thr = f.threshold(t.uniforms, row);
    if (typeof thr !== 'number') fail(`: threshold gives ${String(thr)} (row target ${row.target}, context ${row.context}), not a number`);
    return {
      value: (z) => thresholdOtherValue(f, z, thr, row.context),
      slope: (z) => thresholdOtherSlope(f, z, thr, row.context),
      // Where the mask flips: the threshold, its float64 neighbours, and scores a little farther.
      edges: Number.isFinite(thr) ? [thr, nextAfter(thr, 1), nextAfter(thr, -1), thr + 1e-6, thr - 1e-6] : [],
      detail: `, threshold ${thr}`,
    };
  });
}

/** The next float64 after x toward +Infinity (direction 1) or -Infinity (-1). */
function nextAfter(x: number, direction: 1 | -1): number {
  const f = new Float64Array([x]), i = new BigInt64Array(f.buffer);
  if (x === 0) return direction * Number.MIN_VALUE;
  i[0] += (x > 0) === (direction > 0) ? 1n : -1n;
  return f[0];
}
