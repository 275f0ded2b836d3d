import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FormatError, type Backend } from '@fr/core';
import { formatLossConformance, parseLossCase, runLossCase, runLossConformance } from '@fr/core/testing';
import { arcface } from '../src/index.js';
import { backends } from '@fr/test-kit';

const raw = () => JSON.parse(readFileSync(new URL('./fixtures/arcface-small.json', import.meta.url), 'utf8'));

describe('parseLossCase', () => {
  test('accepts a golden file given as text', () => {
    const c = parseLossCase(readFileSync(new URL('./fixtures/arcface-small.json', import.meta.url), 'utf8'), 'arcface-small.json');
    expect(c.shape).toEqual({ batch: 6, dim: 8, classes: 5 });
    expect(c.inputs.labels).toHaveLength(6);
  });

  test('a malformed case is a FormatError naming the origin and the field', () => {
    const bad = raw();
    bad.inputs.labels[3] = 1.5;
    delete bad.tolerance.rtol;
    expect(() => parseLossCase(bad, 'bad.json')).toThrow(FormatError);
    expect(() => parseLossCase(bad, 'bad.json')).toThrow(/^bad\.json: .*inputs\.labels\.3: .*tolerance\.rtol: /);
    expect(() => parseLossCase('{"name": ', 'cut.json')).toThrow(/cut\.json: not valid JSON/);
  });
});

describe.each(backends)('runLossConformance on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('an unknown loss name is a failure listing the given losses', async () => {
    const c = { ...raw(), loss: 'mv-softmax' };
    await expect(runLossCase(parseLossCase(c), { losses: [arcface], backend })).rejects.toThrow(/no loss named "mv-softmax" among the given losses: arcface/);
    const [r] = await runLossConformance([c], { losses: [arcface], backend });
    expect(r.pass).toBe(false);
    expect(r.error).toMatch(/given losses: arcface/);
  });

  test('a shape mismatch fails that case only, with the reason', async () => {
    const bad = raw();
    bad.name = 'short-weights';
    bad.inputs.weights = bad.inputs.weights.slice(1);
    const results = await runLossConformance([bad, raw(), { name: 'broken', loss: 'arcface' }], { losses: [arcface], backend });
    expect(results.map((r) => r.pass)).toEqual([false, true, false]);
    expect(results[0].error).toMatch(/short-weights: inputs\.weights has 39 values, shape .* needs 40/);
    expect(results[2].error).toMatch(/FormatError: broken: /);
  });

  test('wrong numbers fail the tolerance and the formatter says so', async () => {
    const off = raw();
    off.name = 'off';
    off.expected.gradEmbeddings[0] += 0.1;
    const results = await runLossConformance([raw(), off], { losses: [arcface], backend });
    expect(results[1].checks.gradEmbeddings!.pass).toBe(false);
    expect(results[1].checks.loss!.pass).toBe(true);
    const text = formatLossConformance(results);
    const lines = text.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^PASS arcface-small \(arcface\)  loss .* <= .*gradEmbeddings .* <= .*gradWeights /);
    expect(lines[1]).toMatch(/^FAIL off \(arcface\) .*gradEmbeddings 1\.0\d?e-1 > /);
    expect(lines[2]).toBe('1 passed, 1 failed');
  });
});
