import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FormatError, type Backend } from '@fr/core';
import { formatLossConformance, parseLossCase, runLossConformance } from '@fr/core/testing';
import { subcenterArcface } from '../src/index.js';
import { backends } from '@fr/test-kit';

const raw = () => JSON.parse(readFileSync(new URL('./fixtures/subcenter-arcface-exact-small.json', import.meta.url), 'utf8'));

test('shape.subcenters is read; unknown keys anywhere in a case are errors naming them', () => {
  expect(parseLossCase(raw()).shape).toEqual({ batch: 6, dim: 8, classes: 5, subcenters: 3 });
  const typo = raw();
  typo.shape.subcentres = 3;
  typo.expected.gradWeight = [];
  expect(() => parseLossCase(typo, 'typo.json')).toThrow(FormatError);
  expect(() => parseLossCase(typo, 'typo.json')).toThrow(/^typo\.json: shape: Unrecognized key: "subcentres"; expected: Unrecognized key: "gradWeight"/);
  expect(() => parseLossCase({ ...raw(), comment: 'x' }, 'top.json')).toThrow(/top\.json: \(case\): Unrecognized key: "comment"/);
});

describe.each(backends)('sub-center cases on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('(C*K) x D weights pass; a wrong weight size or a head with another K fails that case, saying why', async () => {
    const noK = raw();
    noK.name = 'no-k';
    delete noK.shape.subcenters;
    const otherK = raw();
    otherK.name = 'other-k';
    otherK.params = { gradient: 'exact', k: 2 };
    const short = raw();
    short.name = 'short';
    short.expected.gradWeights.pop();
    const results = await runLossConformance([raw(), noK, otherK, short], { losses: [subcenterArcface], backend });
    expect(results.map((r) => r.pass)).toEqual([true, false, false, false]);
    expect(results[1].error).toMatch(/no-k: inputs\.weights has 120 values, shape .* needs 40/);
    expect(results[2].error).toMatch(/other-k: subcenter-arcface\.weight .*10.* cannot take 15 \(5 classes x 3 sub-centers\)x8 class weights/);
    expect(results[3].error).toMatch(/short: expected\.gradWeights has 119 values, shape .* needs 120/);
    expect(formatLossConformance(results.slice(0, 1))).toMatch(/^PASS subcenter-arcface-exact-small \(subcenter-arcface\)  loss .* <= .*gradWeights .* <= /);
  });
});
