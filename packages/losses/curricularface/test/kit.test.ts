import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Backend } from '@fr/core';
import { formatLossConformance, runLossConformance } from '@fr/core/testing';
import { curricularface } from '../src/index.js';
import { backends } from '@fr/test-kit';

const raw = () => JSON.parse(readFileSync(new URL('./fixtures/curricularface-default-small.json', import.meta.url), 'utf8'));

describe.each(backends)('expected.state on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('the running t after the step is compared and reported; a wrong value fails that check', async () => {
    const off = raw();
    off.name = 'off';
    off.expected.state['curricularface.t'] += 1e-3;
    const results = await runLossConformance([raw(), off], { losses: [curricularface], backend });
    expect(results[0].pass).toBe(true);
    expect(results[0].checks['state.curricularface.t']!.pass).toBe(true);
    expect(results[1].pass).toBe(false);
    expect(results[1].checks['state.curricularface.t']!.pass).toBe(false);
    expect(results[1].checks.loss!.pass).toBe(true);
    const lines = formatLossConformance(results).split('\n');
    expect(lines[0]).toMatch(/^PASS curricularface-default-small .*gradWeights .* <= .*  state\.curricularface\.t \S+ <= \S+$/);
    expect(lines[1]).toMatch(/^FAIL off .*state\.curricularface\.t 1\.0\de-3 > /);
  });

  test('a state the head lacks is an error naming it and the buffers the head has', async () => {
    const missing = raw();
    missing.name = 'missing';
    missing.expected.state = { 'curricularface.t': 0, 'curricularface.m': 0.5 };
    const [r] = await runLossConformance([missing], { losses: [curricularface], backend });
    expect(r.pass).toBe(false);
    expect(r.error).toMatch(/missing: expected\.state names curricularface\.m, but the head of curricularface has no such buffer \(has: curricularface\.t\)/);
  });
});
