/**
 * The layer ops against PyTorch's numbers (test/fixtures/layers, copied from @fr/backend-cpu:
 * float64 references of torch.nn.functional on float32 inputs), forward, backward and running
 * statistics, and the gradient checker over the SIMD kernels, at 1 and 2 threads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Backend } from '@fr/core';
import { checkLayerGolden, gradCheck, type LayerGolden } from '@fr/core/testing';
import { createWasmBackend } from '../src/index.js';
import { GRAD_CHECK_ELEMENTS, layerGradChecks } from './grad-checks.js';

const dir = fileURLToPath(new URL('./fixtures/layers/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

describe.each([1, 2])('at %i thread(s)', (threads) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await createWasmBackend({ threads });
  });
  afterAll(() => backend.dispose());

  test('every layer fixture is present', () => expect(files.length).toBe(12));
  for (const file of files) {
    test(`layer golden ${file}`, async () => {
      await checkLayerGolden(backend, JSON.parse(readFileSync(dir + file, 'utf8')) as LayerGolden, file);
    });
  }

  for (const { name, fn, inputs } of layerGradChecks) {
    test(`gradient check: ${name}`, async () => {
      const r = await gradCheck(backend, fn, inputs, { maxElements: GRAD_CHECK_ELEMENTS });
      expect(r.passed, JSON.stringify(r.inputs)).toBe(true);
    });
  }
});
