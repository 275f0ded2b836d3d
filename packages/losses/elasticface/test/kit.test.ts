import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cosineMarginHead, createRng, defineLoss, scaledTransform, tensor, z, type Backend } from '@fr/core';
import { runLossConformance } from '@fr/core/testing';
import { elasticface } from '../src/index.js';
import { backends } from '@fr/test-kit';

const raw = () => JSON.parse(readFileSync(new URL('./fixtures/elasticface-arc-default-small.json', import.meta.url), 'utf8'));

/** A head that declares no HeadInputs: margins given to it must not be dropped silently. */
const plain = defineLoss({
  name: 'elasticface',
  description: 'a cosine head without margin inputs (test double under the same name)',
  params: z.object({}),
  createHead: (ctx) => cosineMarginHead(ctx, { name: 'plain', transform: () => scaledTransform(64), reducer: 'softmax-ce' }),
});

describe.each(backends)('inputs.margins on $name', (b) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await b.create();
  });
  afterAll(() => backend.dispose());

  test('the margins of the case replace the draws: other margins give other numbers, whatever the seed', async () => {
    const moved = raw();
    moved.name = 'moved';
    moved.inputs.margins = moved.inputs.margins.map((m: number) => m + 0.1);
    const wrongCount = raw();
    wrongCount.name = 'wrong-count';
    wrongCount.inputs.margins.pop();
    const [given, other, short] = await runLossConformance([raw(), moved, wrongCount], { losses: [elasticface], backend });
    expect(given.pass).toBe(true);
    expect(other.pass).toBe(false);
    expect(other.checks.loss!.pass).toBe(false);
    expect(short.error).toMatch(/wrong-count: inputs\.margins has 5 values, shape .* needs 6/);
  });

  test('a head that takes no margins is refused the case rather than drawing its own', async () => {
    const [r] = await runLossConformance([raw()], { losses: [plain], backend });
    expect(r.pass).toBe(false);
    expect(r.error).toMatch(/the case has inputs\.margins but the head of elasticface takes no margins/);
    const head = plain.createHead({ backend, numClasses: 5, embeddingDim: 8, params: {}, rng: createRng(1) });
    const x = tensor(backend, new Float32Array(8).fill(1), [1, 8]);
    expect(() => head.forward(x, Int32Array.of(0), { margins: Float32Array.of(0.5) })).toThrow(/plain: the head takes no input margins \(it takes: none\)/);
    x.dispose();
    head.dispose();
  });
});
