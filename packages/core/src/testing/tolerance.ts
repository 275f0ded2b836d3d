/**
 * The one closeness rule of the toolkit's tests, as the golden reference files define it:
 * max |got - want| <= atol + rtol * max |want|. Equal values pass (equal infinities too), a NaN
 * passes only against a NaN, and any other non-finite difference is an infinite error. The scale
 * is taken over the finite expected values; with `relativeTo: 'element'` each element is held to
 * atol + rtol * |want[i]| instead (kernel parity tests, where small outputs matter as much as large).
 */

export interface Tolerance {
  rtol: number;
  atol: number;
  relativeTo?: 'max' | 'element';
}

export interface ToleranceCheck {
  /** max |got - want| (Infinity when a NaN or Inf meets a different value, or the lengths differ). */
  maxError: number;
  /** atol + rtol * max |want| */
  limit: number;
  pass: boolean;
  /** The element of the largest error; -1 when every element matches exactly. */
  worst: number;
}

/** Compares two arrays under `atol + rtol * max|want|`. */
export function compareTolerance(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): ToleranceCheck {
  let maxError = got.length === want.length ? 0 : Infinity;
  let maxWant = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  const perElement = tol.relativeTo === 'element';
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) {
    const w = want[i];
    if (Number.isFinite(w) && Math.abs(w) > maxWant) maxWant = Math.abs(w);
    if (got[i] === w || (Number.isNaN(got[i]) && Number.isNaN(w))) continue;
    const e = Math.abs(got[i] - w);
    const error = Number.isFinite(e) ? e : Infinity;
    // The worst element is the one furthest past its own limit (per element) or the largest error.
    const excess = perElement ? error - (tol.atol + tol.rtol * (Number.isFinite(w) ? Math.abs(w) : 0)) : error;
    if (excess > worstExcess) {
      worst = i;
      worstExcess = excess;
    }
    if (!perElement) maxError = Math.max(maxError, error);
  }
  if (perElement) {
    const w = worst < 0 ? 0 : Math.abs(want[worst]);
    const limit = tol.atol + tol.rtol * (Number.isFinite(w) ? w : 0);
    const error = worst < 0 ? (got.length === want.length ? 0 : Infinity) : Math.abs(got[worst] - want[worst]);
    const maxErr = Number.isFinite(error) ? error : Infinity;
    return { maxError: maxErr, limit, pass: maxErr <= limit, worst };
  }
  const limit = tol.atol + tol.rtol * maxWant;
  return { maxError, limit, pass: maxError <= limit, worst };
}

/**
 * Throws when `got` is not close to `want` under the rule, naming `what`, the worst element and
 * the limit. Framework-free: a thrown error fails a test in any runner.
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance, what = 'values'): void {
  const c = compareTolerance(got, want, tol);
  if (c.pass) return;
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, want ${want.length}`);
  throw new Error(`${what}[${c.worst}]: got ${got[c.worst]}, want ${want[c.worst]}; max error ${c.maxError} over ${c.limit} (atol ${tol.atol}, rtol ${tol.rtol})`);
}

/**
 * Chromium's flags for WebGPU without a GPU: Debian's chromium with SwiftShader's Vulkan ICD gives
 * navigator.gpu an adapter with no download. The browser tests launch it with these.
 */
export const CHROMIUM_WEBGPU_FLAGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** SwiftShader's Vulkan driver as Debian's chromium installs it (VK_ICD_FILENAMES for Dawn in Node). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
