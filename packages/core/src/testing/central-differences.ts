/**
 * Central finite differences and their comparison with analytic gradients, shared by the gradient
 * checkers and by tests that differentiate a float64 reference.
 */

/** Numbers `f` reads, moved one at a time: a typed array or a plain array. */
export interface Perturbable {
  [index: number]: number;
  readonly length: number;
}

/**
 * d f / d data[j] for each j of `indices` (default: every index), by central differences: data[j]
 * moves to +eps, then to -eps, then back to its value. A float32 `data` rounds the step, so a
 * float64 reference is better differentiated over a Float64Array.
 */
export async function centralDifferences(data: Perturbable, f: () => number | Promise<number>, eps: number, indices?: readonly number[]): Promise<number[]> {
  const numeric: number[] = [];
  for (const j of indices ?? Array.from({ length: data.length }, (_, i) => i)) {
    const orig = data[j];
    data[j] = orig + eps;
    const plus = await f();
    data[j] = orig - eps;
    const minus = await f();
    data[j] = orig;
    numeric.push((plus - minus) / (2 * eps));
  }
  return numeric;
}

/** The worst of an input's gradient entries: the largest |analytic - numeric|, the error allowed and where. */
export interface GradDisagreement {
  maxError: number;
  allowed: number;
  index: number;
  analytic: number;
  numeric: number;
}

/**
 * The largest |analytic[indices[t]] - numeric[t]| (indices default: t itself; a NaN counts as the
 * worst), against the error allowed, atol + rtol * max |numeric|; it passes when maxError <= allowed.
 */
export function worstDisagreement(analytic: ArrayLike<number>, numeric: readonly number[], tolerance: { atol: number; rtol: number }, indices?: readonly number[]): GradDisagreement {
  const allowed = tolerance.atol + tolerance.rtol * Math.max(0, ...numeric.map(Math.abs));
  let worst: GradDisagreement = { maxError: 0, allowed, index: -1, analytic: 0, numeric: 0 };
  numeric.forEach((_, t) => {
    const j = indices ? indices[t] : t;
    const e = Math.abs(analytic[j] - numeric[t]);
    if (!(e <= worst.maxError)) worst = { maxError: e, allowed, index: j, analytic: analytic[j], numeric: numeric[t] };
  });
  return worst;
}
