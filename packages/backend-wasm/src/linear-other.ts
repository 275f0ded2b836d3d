/**
 * A transform's `otherLinear` declaration is what the SIMD margin loss runs instead of `other` and
 * `otherGrad`, so it is checked against them (once per transform object) before it is trusted:
 * a declaration that disagrees is refused, naming the transform and the score where it does.
 */
import { BackendError, type LinearOther, type MarginTransform, type RowContext } from '@fr/core';

export function linearOtherValue(f: LinearOther, z: number): number {
  return f.scale * Math.min(Math.max(z, f.lo), f.hi);
}

export function linearOtherSlope(f: LinearOther, z: number): number {
  return z >= f.lo && z <= f.hi ? f.slope : f.slopeOutside;
}

const PROBE_ROWS: RowContext[] = [{ target: 0.3, context: 0 }, { target: -0.8, context: 2.5 }, { target: Number.NaN, context: -1 }];

function sameNumber(a: number, b: number): boolean {
  return a === b || Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
}

/** Throws where `t.otherLinear` disagrees with `t.other` / `t.otherGrad` (or is malformed). */
export function checkLinearOther(t: MarginTransform, f: LinearOther): void {
  const fail = (what: string) => {
    throw new BackendError(`wasm backend: transform ${t.key}: otherLinear ${JSON.stringify(f)} ${what}`);
  };
  for (const key of ['scale', 'lo', 'hi', 'slope', 'slopeOutside'] as const) {
    if (typeof f[key] !== 'number' || Number.isNaN(f[key])) fail(`: ${key} must be a number, got ${String(f[key])}`);
  }
  for (const key of ['scale', 'slope', 'slopeOutside'] as const) if (!Number.isFinite(f[key])) fail(`: ${key} must be finite, got ${f[key]}`);
  if (!(f.lo <= f.hi)) fail(`: lo (${f.lo}) is above hi (${f.hi})`);
  const probes = [-2, -1.5, -1, -1 + 1e-5, -0.7, -0.31, 0, 1e-3, 0.42, 0.9, 1 - 1e-5, 1, 1.5, 2, f.lo, f.hi, f.lo - 1e-6, f.hi + 1e-6];
  for (let i = 0; i < 16; i++) probes.push(1.2 * Math.sin(12.9898 * i));
  for (const row of PROBE_ROWS) {
    for (const z of probes.filter(Number.isFinite)) {
      const value = t.other(z, t.uniforms, row), slope = t.otherGrad(z, t.uniforms, row);
      // The declaration holds for every row: the non-target logits do not depend on the context.
      const contextSlope = t.otherContextGrad ? t.otherContextGrad(z, t.uniforms, row) : 0;
      if (contextSlope !== 0) {
        fail(`declares non-target logits independent of the row context, but otherContextGrad gives ${contextSlope} at z = ${z} (context ${row.context})`);
      }
      if (!sameNumber(value, linearOtherValue(f, z)) || !sameNumber(slope, linearOtherSlope(f, z))) {
        fail(`disagrees with other/otherGrad at z = ${z} (row target ${row.target}, context ${row.context}): they give ${value} and ${slope}, the declaration ${linearOtherValue(f, z)} and ${linearOtherSlope(f, z)}`);
      }
    }
  }
}

/** float32 bounds for float32 scores: z >= lo exactly when z >= ceil32(lo), z <= hi when z <= floor32(hi). */
export function float32Bounds(lo: number, hi: number): [number, number] {
  let lo32 = Math.fround(lo), hi32 = Math.fround(hi);
  if (lo32 < lo) lo32 = nextUp(lo32);
  if (hi32 > hi) hi32 = -nextUp(-hi32);
  return [lo32, hi32];
}

function nextUp(x: number): number {
  const b = new Float32Array([x]), i = new Int32Array(b.buffer);
  if (x === 0) return 1.4e-45;
  i[0] += x > 0 ? 1 : -1;
  return b[0];
}
