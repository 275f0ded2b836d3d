import { createCpuBackend } from '@fr/backend-cpu';
import { createRng, type Backend } from '@fr/core';
import { expectClose } from '@fr/core/testing';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createWasmBackend } from './index.js';

let backends: Backend[];
const reference = createCpuBackend();
beforeAll(async () => {
  backends = await Promise.all([1, 2, 3].map((threads) => createWasmBackend({ threads })));
});
afterAll(() => {
  for (const b of [...backends, reference]) b.dispose();
});

function random(n: number, seed: number, positive = false): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => (positive ? rng.uniform() : rng.normal()));
}

/** Writes `inputs`, runs `call`, reads back the buffers named in `outputs` (indices into inputs). */
async function run(b: Backend, inputs: Float32Array[], outputs: number[], call: (bufs: unknown[]) => void): Promise<Float32Array[]> {
  const bufs = inputs.map((x) => {
    const buf = b.alloc(x.length, 'float32');
    b.write(buf, x);
    return buf;
  });
  call(bufs);
  const out = await Promise.all(outputs.map((i) => b.read(bufs[i], 'float32', inputs[i].length)));
  for (const x of bufs) b.free(x);
  return out as Float32Array[];
}

/** The reference's bits at 1, 2 and 3 threads (the same float64 operations in the same order). */
async function expectReferenceBits(inputs: Float32Array[], outputs: number[], call: (b: Backend, bufs: unknown[]) => void) {
  const want = await run(reference, inputs, outputs, (bufs) => call(reference, bufs));
  for (const b of backends) {
    const got = await run(b, inputs, outputs, (bufs) => call(b, bufs));
    got.forEach((g, i) => {
      expectClose(g, want[i], { rtol: 0, atol: 0 }, `${b.capabilities.description}: output ${i}`);
      expect(Buffer.from(g.buffer).equals(Buffer.from(want[i].buffer))).toBe(true);
    });
  }
}

describe('AdamW and reductions on the kernel module', () => {
  test('adamwStep: the reference bit for bit, odd length split over threads', async () => {
    const n = 100_003;
    for (const step of [1, 7]) {
      await expectReferenceBits([random(n, 1), random(n, 2), random(n, 3), random(n, 4, true)], [0, 2, 3], (b, [w, g, m, v]) =>
        b.kernels.adamwStep(w, g, m, v, { n, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, step }));
    }
  });
  for (const [rows, cols] of [[1, 1], [3, 7], [301, 517], [70_000, 3]]) {
    test(`reduceSum ${rows}x${cols} along both axes: the reference bit for bit`, async () => {
      const x = random(rows * cols, rows + cols);
      await expectReferenceBits([x, new Float32Array(cols).fill(NaN)], [1], (b, [xb, out]) => b.kernels.reduceSum(xb, out, rows, cols, 0));
      await expectReferenceBits([x, new Float32Array(rows).fill(NaN)], [1], (b, [xb, out]) => b.kernels.reduceSum(xb, out, rows, cols, 1));
    });
  }
});
