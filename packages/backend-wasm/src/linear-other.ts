/**
 * A transform's `otherLinear` (or `otherPower`) declaration is what the SIMD margin loss runs instead of `other` and
 * `otherGrad`, so it is checked against them (once per transform object) before it is trusted:
 * a declaration that disagrees is refused, naming the transform and the score where it does.
 */
import { BackendError, type LinearOther, type MarginTransform, type PowerOther, type RowContext } from '@fr/core';

export function linearOtherValue(f: LinearOther, z: number): number {
  return f.scale * Math.min(Math.max(z, f.lo), f.hi);
}

export function linearOtherSlope(f: { lo: number; hi: number; slope: number; slopeOutside: number }, z: number): number {
  return z >= f.lo && z <= f.hi ? f.slope : f.slopeOutside;
}

const PROBE_ROWS: RowContext[] = [{ target: 0.3, context: 0 }, { target: -0.8, context: 2.5 }, { target: Number.NaN, context: -1 }];

function sameNumber(a: number, b: number): boolean {
  return a === b || Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
}

/** Scores a declaration is compared with its transform at: across [-2, 2], at the clamp and just outside it. */
function probeScores(f: { lo: number; hi: number }): number[] {
  const probes = [-2, -1.5, -1, -1 + 1e-5, -0.7, -0.31, 0, 1e-3, 0.42, 0.9, 1 - 1e-5, 1, 1.5, 2, f.lo, f.hi, f.lo - 1e-6, f.hi + 1e-6];
  for (let i = 0; i < 16; i++) probes.push(1.2 * Math.sin(12.9898 * i));
  return probes;
}

/** A declaration's clamp and slopes: numbers, finite scale and slopes, lo not above hi. */
export function checkClampedLinear(f: LinearOther, fail: (what: string) => never): void {
  for (const key of ['scale', 'lo', 'hi', 'slope', 'slopeOutside'] as const) {
    if (typeof f[key] !== 'number' || Number.isNaN(f[key])) fail(`: ${key} must be a number, got ${String(f[key])}`);
  }
  for (const key of ['scale', 'slope', 'slopeOutside'] as const) if (!Number.isFinite(f[key])) fail(`: ${key} must be finite, got ${f[key]}`);
  if (!(f.lo <= f.hi)) fail(`: lo (${f.lo}) is above hi (${f.hi})`);
}

/** Throws where `t.otherLinear` disagrees with `t.other` / `t.otherGrad` (or is malformed). */
export function checkLinearOther(t: MarginTransform, f: LinearOther): void {
  const fail = failure(t, 'otherLinear', f);
  checkClampedLinear(f, fail);
  probeDeclaration(t, f, fail, PROBE_ROWS, () => ({ value: (z) => linearOtherValue(f, z), slope: (z) => linearOtherSlope(f, z) }), { contextFree: true });
}

export function powerOtherValue(f: PowerOther, z: number): number {
  return f.scale * Math.pow(Math.max(f.inner * Math.min(Math.max(z, f.lo), f.hi) + f.shift, 0), f.power) + f.offset;
}

/** Throws where `t.otherPower` disagrees with `t.other` / `t.otherGrad` (or is malformed). */
export function checkPowerOther(t: MarginTransform, f: PowerOther): void {
  const fail = failure(t, 'otherPower', f);
  const keys = ['scale', 'lo', 'hi', 'inner', 'shift', 'power', 'offset', 'slope', 'slopeOutside'] as const;
  for (const key of keys) if (typeof f[key] !== 'number' || Number.isNaN(f[key])) fail(`: ${key} must be a number, got ${String(f[key])}`);
  for (const key of keys) if (key !== 'lo' && key !== 'hi' && !Number.isFinite(f[key])) fail(`: ${key} must be finite, got ${f[key]}`);
  if (!(f.lo <= f.hi)) fail(`: lo (${f.lo}) is above hi (${f.hi})`);
  if (!(f.power > 0)) fail(`: power must be above 0, got ${f.power}`);
  // The terms of the sum set the rounding a correct transform may differ by (r (g + m) against 2r p + r (m - 1)).
  const magnitude = (z: number) => Math.abs(powerOtherValue(f, z) - f.offset) + Math.abs(f.offset);
  probeDeclaration(t, f, fail, PROBE_ROWS, () => ({ value: (z) => powerOtherValue(f, z), slope: (z) => linearOtherSlope(f, z) }), { magnitude, contextFree: true });
}

export function failure(t: MarginTransform, name: string, f: object): (what: string) => never {
  return (what) => {
    throw new BackendError(`wasm backend: transform ${t.key}: ${name} ${JSON.stringify(f)} ${what}`);
  };
}

/** What a declaration gives in one row: its value and slope at a score. */
export interface RowDeclaration {
  value(z: number): number;
  slope(z: number): number;
  /** Scores probed in this row besides the common ones: where the declaration changes form. */
  edges?: readonly number[];
  /** Said after the row's target and context when the row disagrees. */
  detail?: string;
}

/**
 * Compares a declaration with the transform over a range of scores in each of `rows`.
 * `magnitude(z)`: the size its rounding is relative to; `contextFree`: the declaration holds for
 * every context, so otherContextGrad must be 0.
 */
export function probeDeclaration(
  t: MarginTransform, f: { lo: number; hi: number }, fail: (what: string) => never, rows: readonly RowContext[],
  declare: (row: RowContext) => RowDeclaration, options: { magnitude?: (z: number) => number; contextFree?: boolean } = {},
): void {
  const probes = probeScores(f);
  const magnitude = options.magnitude ?? (() => 0);
  for (const row of rows) {
    const d = declare(row);
    for (const z of [...probes, ...(d.edges ?? [])].filter(Number.isFinite)) {
      const got = t.other(z, t.uniforms, row), slope = t.otherGrad(z, t.uniforms, row);
      const want = d.value(z), wantSlope = d.slope(z);
      const close = sameNumber(got, want) || Math.abs(got - want) <= 1e-12 * magnitude(z);
      if (!close || !sameNumber(slope, wantSlope)) {
        fail(`disagrees with other/otherGrad at z = ${z} (row target ${row.target}, context ${row.context}${d.detail ?? ''}): they give ${got} and ${slope}, the declaration ${want} and ${wantSlope}`);
      }
      if (!options.contextFree) continue;
      const contextSlope = t.otherContextGrad ? t.otherContextGrad(z, t.uniforms, row) : 0;
      if (contextSlope !== 0) {
        fail(`declares non-target logits independent of the row context, but otherContextGrad gives ${contextSlope} at z = ${z} (context ${row.context})`);
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
