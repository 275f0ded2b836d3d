/** Tick values and labels of the loss axis: 1-2-5 steps on a linear scale, decades on a log scale. */

export interface Tick {
  value: number;
  label: string;
}

/** A short label: integers as is, small values to one significant digit, below 0.001 as 1e-4. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(6)));
  const [mant, exp] = v.toExponential().split('e');
  return `${Number(Number(mant).toPrecision(3))}e${Number(exp)}`;
}

/**
 * Ticks for a log axis over [lo, hi] (both > 0): the powers of ten inside the range when there are
 * three or more; else 1 and 3 times the powers of ten (half-decade steps); else 1, 2 and 5 times
 * them; when even those are fewer than two (a range narrower than 2x), the two ends rounded to two
 * significant digits.
 */
export function logTicks(lo: number, hi: number): Tick[] {
  if (!(lo > 0 && hi >= lo)) throw new Error(`logTicks: need 0 < lo <= hi, got ${lo}, ${hi}`);
  const inside = (v: number) => v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9);
  const series = (multiples: number[]) => {
    const out: number[] = [];
    for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
      for (const m of multiples) {
        const v = Number((m * 10 ** k).toPrecision(1));
        if (inside(v)) out.push(v);
      }
    }
    return out;
  };
  let values = series([1]);
  if (values.length < 3) values = series([1, 3]);
  if (values.length < 2) values = series([1, 2, 5]);
  if (values.length < 2) values = [Number(lo.toPrecision(2)), Number(hi.toPrecision(2))].filter((v, i, a) => a.indexOf(v) === i);
  // More than six decades: every other one, so labels never overlap.
  if (values.length > 6) values = values.filter((_, i) => i % 2 === 0);
  return values.map((value) => ({ value, label: formatTick(value) }));
}

/**
 * Ticks for a linear axis over [lo, hi]: a 1, 2 or 5 times a power of ten step, about `count` of
 * them, and never fewer than two (the step shrinks until two fit).
 */
export function linearTicks(lo: number, hi: number, count = 4): Tick[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi >= lo)) throw new Error(`linearTicks: need finite lo <= hi, got ${lo}, ${hi}`);
  if (hi === lo) return [{ value: lo, label: formatTick(lo) }];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const steps = [0.5, 1, 2, 5, 10].map((m) => m * power);
  const at = (step: number) => {
    const out: Tick[] = [];
    for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
      const value = Number(v.toPrecision(12));
      out.push({ value, label: formatTick(value) });
    }
    return out;
  };
  let i = steps.findIndex((s) => s >= raw);
  while (i > 0 && at(steps[i]).length < 2) i--;
  return at(steps[i]);
}
