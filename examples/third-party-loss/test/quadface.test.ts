import { expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { formatLossConformance, lossGradCheck, parseLossCase, runLossConformance } from '@fr/core/testing';
import { quadface } from '../src/index.js';
import { referenceCase } from './reference.js';

test('quadface passes the conformance kit on its own reference cases', async () => {
  const backend = createCpuBackend();
  const cases = [referenceCase(6, 8, 5, 32, 0.2, 0.1, 1), referenceCase(16, 32, 200, 64, 0.35, 0.3, 2)].map((c) =>
    parseLossCase(JSON.parse(JSON.stringify(c)), c.name),
  );
  const results = await runLossConformance(cases, { losses: [quadface], backend });
  const report = formatLossConformance(results);
  expect(results.every((r) => r.pass), report).toBe(true);
  expect(report.split('\n').at(-1)).toBe('2 passed, 0 failed');
  expect(results[0].value).toBeCloseTo(cases[0].expected.loss, 4);
});

test('a wrong plugin fails the same cases: q is not ignored by the check', async () => {
  const backend = createCpuBackend();
  const c = referenceCase(6, 8, 5, 32, 0.2, 0.1, 1);
  const [r] = await runLossConformance([{ ...c, params: { s: 32, m: 0.2, q: 0 } }], { losses: [quadface], backend });
  expect(r.pass).toBe(false);
  expect(r.checks.loss!.pass).toBe(false);
});

test('the exact gradient agrees with finite differences', async () => {
  const r = await lossGradCheck(quadface, { backend: createCpuBackend(), params: { s: 8, q: 0.5 }, batch: 3, dim: 6, classes: 4 });
  for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
});
