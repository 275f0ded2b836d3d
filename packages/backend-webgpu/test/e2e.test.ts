import { createCpuBackend } from '@fr/backend-cpu';
import {
  backward, l2normalize, labelTensor, marginLoss, matmul, scaledTransform, tensor, tidy, type Backend, type Tensor,
} from '@fr/core';
import { describe, expect, it } from 'vitest';
import { expectClose, gpu, randomF32, randomInt } from './helpers.js';

/** A normalised-softmax head through @fr/core ops: cos = norm(x) norm(W)^T, then the fused loss. */
async function step(backend: Backend, reducer: 'softmax-ce' | 'sigmoid-ova') {
  const B = 16, D = 64, C = 300;
  const x = tensor(backend, randomF32(1, B * D), [B, D], { requiresGrad: true, name: 'x' });
  const w = tensor(backend, randomF32(2, C * D, -0.1, 0.1), [C, D], { requiresGrad: true, name: 'w' });
  const bias = tensor(backend, Float32Array.of(-2), [1], { requiresGrad: reducer === 'sigmoid-ova', name: 'bias' });
  const labels = labelTensor(backend, randomInt(3, B, C), C);
  const loss = tidy(() => {
    const cos = matmul(l2normalize(x), l2normalize(w), { transB: true });
    const l = marginLoss(cos, labels, {
      transform: scaledTransform(30), reducer, scale: 1 / B, positiveWeight: 2, negativeWeight: 0.5,
      bias: reducer === 'sigmoid-ova' ? bias : null,
    });
    // Backward inside the scope: the tape holds intermediates that tidy frees at its end.
    backward(l);
    return l;
  });
  const read = async (t: Tensor | null) => Array.from(await t!.data());
  const out = { loss: await read(loss), gx: await read(x.grad), gw: await read(w.grad), gb: reducer === 'sigmoid-ova' ? await read(bias.grad) : [] };
  for (const t of [x, w, bias, labels, loss]) t.dispose();
  return out;
}

describe('end to end through @fr/core ops', () => {
  for (const reducer of ['softmax-ce', 'sigmoid-ova'] as const) {
    it(`${reducer}: loss and gradients of x, W (and bias) match the CPU backend`, async () => {
      const backend = await gpu();
      const live = backend.stats().buffersLive;
      const want = await step(createCpuBackend(), reducer);
      const got = await step(backend, reducer);
      expectClose(got.loss, want.loss, { rtol: 1e-5, atol: 1e-5 }, 'loss');
      expectClose(got.gx, want.gx, { atol: 1e-6, rtol: 1e-4 }, 'dx');
      expectClose(got.gw, want.gw, { atol: 1e-6, rtol: 1e-4 }, 'dW');
      expectClose(got.gb, want.gb, { atol: 1e-5, rtol: 1e-4 }, 'dbias');
      expect(Math.max(...got.gw.map(Math.abs))).toBeGreaterThan(0);
      // Every intermediate was freed by tidy / backward.
      expect(backend.stats().buffersLive).toBe(live);
    });
  }
});
