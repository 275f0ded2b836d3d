/**
 * QuadFace checked as any plugin should be: against reference cases computed independently of it
 * (test/reference.ts, float64), on the CPU backend and on WebGPU (Dawn in Node; without a GPU,
 * SwiftShader's Vulkan driver), with the conformance kit of @fr/core/testing.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { createNodeWebGpuBackend } from '@fr/backend-webgpu/node';
import type { Backend } from '@fr/core';
import { formatLossConformance, lossGradCheck, parseLossCase, runLossConformance, SWIFTSHADER_ICD } from '@fr/core/testing';
import { quadface } from '../src/index.js';
import { referenceCase, shippedCases } from './reference.js';

async function webgpu(): Promise<Backend> {
  // Read by the Vulkan loader when Dawn starts: SwiftShader unless another driver is configured.
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  return createNodeWebGpuBackend();
}

const backends = [
  { name: 'cpu', create: async (): Promise<Backend> => createCpuBackend() },
  { name: 'webgpu', create: webgpu },
];

for (const b of backends) {
  describe(`on ${b.name}`, () => {
    let backend: Backend | undefined;
    const get = async () => (backend ??= await b.create());
    afterAll(() => backend?.dispose());

    test('quadface passes the conformance kit on its own reference cases', async () => {
      const cases = [referenceCase(6, 8, 5, 32, 0.2, 0.1, 1), referenceCase(16, 32, 200, 64, 0.35, 0.3, 2)].map((c) =>
        parseLossCase(JSON.parse(JSON.stringify(c)), c.name),
      );
      const results = await runLossConformance(cases, { losses: [quadface], backend: await get() });
      const report = formatLossConformance(results);
      expect(results.every((r) => r.pass), report).toBe(true);
      expect(report.split('\n').at(-1)).toBe('2 passed, 0 failed');
      expect(results[0].value).toBeCloseTo(cases[0].expected.loss, 4);
    });

    test('a wrong plugin fails the same cases: q is not ignored by the check', async () => {
      const c = referenceCase(6, 8, 5, 32, 0.2, 0.1, 1);
      const [r] = await runLossConformance([{ ...c, params: { s: 32, m: 0.2, q: 0 } }], { losses: [quadface], backend: await get() });
      expect(r.pass).toBe(false);
      expect(r.checks.loss!.pass).toBe(false);
    });

    test('the shipped cases (cases/*.json) are the reference\'s, and pass', async () => {
      const dir = new URL('../cases/', import.meta.url);
      const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
      const shipped = files.map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')));
      expect(shipped).toEqual(shippedCases().map((c) => JSON.parse(JSON.stringify(c))).sort((x, y) => x.name.localeCompare(y.name)));
      const results = await runLossConformance(shipped.map((c, i) => parseLossCase(c, files[i])), { losses: [quadface], backend: await get() });
      expect(results.every((r) => r.pass), formatLossConformance(results)).toBe(true);
    });
  });
}

test('the exact gradient agrees with finite differences (CPU, float64 steps)', async () => {
  const r = await lossGradCheck(quadface, { backend: createCpuBackend(), params: { s: 8, q: 0.5 }, batch: 3, dim: 6, classes: 4 });
  for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
});
