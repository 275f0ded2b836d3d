/**
 * A stricter reading of the golden cases: each tensor's error must stay within a fraction of its
 * tolerance, not merely inside it. Float32 arithmetic done well lands at a few thousandths of the
 * golden tolerance; an error near the limit means bits are lost somewhere (WGSL's coarse built-in
 * sin and cos once cost a third of it), which a pass/fail test would not notice until it failed.
 */
import type { Backend } from '../backend.js';
import type { Loss } from '../loss.js';
import { runLossConformance, type GoldenBackend, type GoldenTestApi, type LossCase, type LossCaseResult } from './loss-conformance.js';

export interface GoldenPrecisionOptions {
  /** The package's reference cases (parsed). */
  cases: readonly LossCase[];
  /** How many cases the package ships: a lost fixture file fails the suite. */
  count: number;
  losses: readonly Loss<any>[];
  backends: readonly GoldenBackend[];
  /** The largest error allowed, as a fraction of each tensor's limit (atol + rtol max|want|); default 0.05. */
  fraction?: number;
}

/** `loss 0.0001 gradEmbeddings 0.0017 ...`: each check's error over its limit. */
export function precisionRatios(r: LossCaseResult): Record<string, number> {
  return Object.fromEntries(Object.entries(r.checks).map(([k, c]) => [k, c.limit > 0 ? c.maxError / c.limit : c.maxError === 0 ? 0 : Infinity]));
}

/** Declares, per backend, `golden precision on <backend>`: one test per case, every tensor within `fraction` of its limit. */
export function describeGoldenPrecision(api: GoldenTestApi, o: GoldenPrecisionOptions): void {
  const fraction = o.fraction ?? 0.05;
  for (const b of o.backends) {
    api.describe(`golden precision on ${b.name}`, () => {
      let backend: Backend;
      api.beforeAll(async () => {
        backend = await b.create();
      });
      api.afterAll(() => backend.dispose());

      api.test('every precision fixture of the package is here', () => {
        api.expect(o.cases).toHaveLength(o.count);
      });

      for (const c of o.cases) {
        api.test(`${c.name}: every error within ${fraction} of its tolerance`, async () => {
          const [r] = await runLossConformance([c], { losses: o.losses, backend });
          api.expect(r.error, r.error).toBeUndefined();
          const ratios = precisionRatios(r);
          const report = `${c.name} on ${b.name}, error / limit: ${Object.entries(ratios).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')} (allowed ${fraction})`;
          api.expect(Object.keys(ratios).length > 0 && Object.values(ratios).every((v) => v <= fraction), report).toBe(true);
        });
      }
    });
  }
}
