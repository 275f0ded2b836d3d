import { describe, expect, test } from 'vitest';
import { add, cosineMarginHead, defineLoss, noGrad, scale, scaledTransform, sum, tensor, z, type LossHead } from '@fr/core';
import { lossGradCheck } from '@fr/core/testing';

import { createCpuBackend } from './index.js';

const backend = createCpuBackend();
const params = z.object({ s: z.number().default(4) });

/** A cosine head with a trainable scalar bias on the logits (as SphereFace2's). */
const biased = defineLoss({
  name: 'biased', description: 'cosine softmax with a trainable logit bias', params,
  createHead: (ctx) => cosineMarginHead(ctx, { name: 'biased', transform: () => scaledTransform(ctx.params.s), reducer: 'softmax-ce', bias: 0.3 }),
});

/** The same loss plus 0.5 x a trainable offset, added without recording it: its gradient never arrives. */
const detached = defineLoss({
  name: 'detached', description: 'a head whose extra parameter is missing from the tape', params,
  createHead: (ctx): LossHead => {
    const inner = cosineMarginHead(ctx, { name: 'detached', transform: () => scaledTransform(ctx.params.s), reducer: 'softmax-ce' });
    const offset = tensor(ctx.backend, [0.2], [1], { requiresGrad: true, name: 'detached.offset' });
    return {
      ...inner,
      parameters: [...inner.parameters, { name: offset.name, tensor: offset }],
      forward: (x, labels) => add(inner.forward(x, labels), noGrad(() => scale(sum(offset), 0.5))),
      dispose: () => { inner.dispose(); offset.dispose(); },
    };
  },
});

describe('lossGradCheck checks every trainable head parameter', () => {
  test('a head bias is checked by finite differences beside the embeddings and the class weights', async () => {
    const r = await lossGradCheck(biased, { backend, batch: 3, dim: 4, classes: 5, seed: 2 });
    expect(r.checks.map((c) => c.wrt)).toEqual(['embeddings', 'weights', 'biased.bias']);
    for (const c of r.checks) expect(c.maxError, JSON.stringify(c)).toBeLessThanOrEqual(c.allowed);
    expect(r.passed).toBe(true);
    // The bias gradient of a softmax over logits + b is zero per row; what is checked is that it is.
    expect(Math.abs(r.checks[2]!.numeric)).toBeLessThan(1e-3);
  });

  test('a parameter the loss depends on but that gets no gradient fails the check', async () => {
    const r = await lossGradCheck(detached, { backend, batch: 3, dim: 4, classes: 5, seed: 2 });
    const byName = Object.fromEntries(r.checks.map((c) => [c.wrt, c]));
    expect(byName.embeddings!.maxError).toBeLessThanOrEqual(byName.embeddings!.allowed);
    expect(byName['detached.offset']!.numeric).toBeCloseTo(0.5, 3);
    expect(byName['detached.offset']!.analytic).toBe(0);
    expect(r.passed).toBe(false);
  });

  test('wrt names a parameter; an unknown name lists the valid ones', async () => {
    const r = await lossGradCheck(biased, { backend, batch: 2, dim: 3, classes: 3, wrt: ['biased.bias'] });
    expect(r.checks.map((c) => c.wrt)).toEqual(['biased.bias']);
    await expect(lossGradCheck(biased, { backend, batch: 2, dim: 3, classes: 3, wrt: ['bias'] }))
      .rejects.toThrow(/biased has no input bias; valid: embeddings, weights, biased.bias/);
  });
});
