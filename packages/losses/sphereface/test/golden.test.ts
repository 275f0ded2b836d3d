import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Backend } from '@fr/core';
import { formatLossConformance, runLossConformance } from '@fr/core/testing';
import { sphereface } from '../src/index.js';
import { backends, fixtures } from './backends.js';

const cases = fixtures();
const losses = [sphereface];

describe.each(backends)('golden cases on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('every fixture of the package is here', () => {
    expect(cases).toHaveLength(4);
  });

  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const [r] = await runLossConformance([c], { losses, backend });
    const report = formatLossConformance([r]);
    if (process.env.FR_SHOW) console.log(report);
    expect(r.error, report).toBeUndefined();
    expect(r.pass, report).toBe(true);
  });
});
