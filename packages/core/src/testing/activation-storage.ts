/**
 * Float16 activation storage, checked on a backend: one small network (convolution, batch norm,
 * PReLU, a residual block, dropout, linear) run forward and backward with activations stored in
 * float32 and in float16, from the same weights and input. A backend's test asserts the report:
 * the forward is identical (it computes from unrounded values), the bytes held after the forward
 * drop as counted here, gradients agree to float16 precision, and nothing outlives the step.
 */
import type { Backend } from '../backend.js';
import type { ForwardMode, Module } from '../backbone.js';
import { flatten, layerBuilder, sequential, type Layer } from '../layers.js';
import { add, mul, sum } from '../ops.js';
import { createRng } from '../rng.js';
import { backward } from '../tape.js';
import { tensor, tidy } from '../tensor.js';

export interface ActivationStorageRun {
  /** The network's output, [N, 16]. */
  output: Float32Array;
  /** Gradients of every parameter, concatenated in parameter order. */
  grads: Float32Array;
  /** Backend bytes alive at the end of the forward, above those alive before it (the input included). */
  forwardBytes: number;
  /** Backend buffers alive after the step's scope closed, above those alive before it. */
  leakedBuffers: number;
}

export interface ActivationStorageReport {
  float32: ActivationStorageRun;
  float16: ActivationStorageRun;
}

const N = 4, C = 8, H = 12, W = 12;

/**
 * Elements this network holds in float16 at the end of a float16-storage forward, by hand: the
 * outputs of the stem's conv, bn and prelu, of the block's bn, conv, bn, prelu and of its sum
 * (8 x 4 x 8 x 12 x 12), then conv2, bn2, flatten, dropout and its mask (5 x 4 x 8 x 6 x 6), and
 * the linear layer's product before its bias (4 x 16). The input (made outside), the batch
 * statistics (rank 1) and the output stay float32. The forward's bytes drop by 2 per element.
 */
export const ACTIVATION_STORAGE_PACKED_ELEMENTS = 8 * N * C * H * W + 5 * N * C * (H / 2) * (W / 2) + N * 16;

/** The network: conv-bn-prelu stem, one residual block, conv, bn, dropout, linear to 16. */
function network(backend: Backend): Module {
  const b = layerBuilder(backend, createRng(11));
  const stem = sequential(
    b.conv2d('conv1', { inChannels: 3, outChannels: C, kernel: 3, padding: 1 }),
    b.batchNorm('bn1', C),
    b.prelu('prelu1', C),
  );
  const blockBody = sequential(
    b.batchNorm('block.bn1', C),
    b.conv2d('block.conv1', { inChannels: C, outChannels: C, kernel: 3, padding: 1 }),
    b.batchNorm('block.bn2', C),
    b.prelu('block.prelu', C),
  );
  const block: Layer = { forward: (x, mode) => add(blockBody.forward(x, mode), x) };
  const trunk = sequential(stem, block, b.conv2d('conv2', { inChannels: C, outChannels: C, kernel: 3, stride: 2, padding: 1 }), b.batchNorm('bn2', C));
  const drop = b.dropout(0.2);
  const fc = b.linear('fc', C * (H / 2) * (W / 2), 16);
  return b.module((x, mode) => fc.forward(drop.forward(flatten(trunk.forward(x, mode)), mode), mode));
}

async function runOnce(backend: Backend, activationStorage: 'float32' | 'float16'): Promise<ActivationStorageRun> {
  const module = network(backend);
  const rng = createRng(5);
  const input = Float32Array.from({ length: N * 3 * H * W }, () => rng.normal());
  const mode: ForwardMode = { training: true, seed: 3, activationStorage };
  const buffersBefore = backend.stats().buffersLive;
  let forwardBytes = 0;
  const out = tidy(() => {
    const before = backend.stats().bytesLive;
    const x = tensor(backend, input, [N, 3, H, W]);
    const y = module.forward(x, mode);
    forwardBytes = backend.stats().bytesLive - before;
    // A loss that weighs each output differently, so every gradient is distinct.
    const weights = tensor(backend, Float32Array.from({ length: y.size }, (_, i) => Math.sin(i + 1)), y.shape);
    const loss = sum(mul(y, weights));
    backward(loss);
    return y;
  });
  const output = (await out.data()) as Float32Array;
  out.dispose();
  const parts = await Promise.all(module.parameters.map((p) => p.tensor.grad!.data()));
  const grads = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    grads.set(p, at);
    at += p.length;
  }
  for (const p of module.parameters) {
    p.tensor.grad?.dispose();
    p.tensor.grad = null;
  }
  const leakedBuffers = backend.stats().buffersLive - buffersBefore;
  module.dispose();
  return { output, grads, forwardBytes, leakedBuffers };
}

/** Runs the network with float32 and with float16 activation storage on `backend`. */
export async function runActivationStorageCheck(backend: Backend): Promise<ActivationStorageReport> {
  return { float32: await runOnce(backend, 'float32'), float16: await runOnce(backend, 'float16') };
}

