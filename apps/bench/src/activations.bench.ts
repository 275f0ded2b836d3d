/**
 * Activation storage: one training step of a backbone (forward, a scalar loss, backward) with the
 * activations kept for the backward pass in float32 and in float16 (`activationStorage`), on the
 * same device, weights and input. Printed per network and device: the bytes alive at the end of the
 * forward (the step's peak but for the backward's own temporaries), the step time, and the
 * float16/float32 ratios; the largest relative difference of the input gradient says what the
 * rounding costs.
 */
import { backward, createRng, mul, sum, tensor, tidy, type Backend, type ForwardMode } from '@fr/core';
import { buildBackbone, DEFAULT_INPUT_SIZE, type Arch } from './backbone.bench.js';
import { fmt, maxRelError, mib, ourBackend, printTable, timeSteps, type Device, type Log, type RepPolicy } from './common.js';

export interface ActivationsBenchOptions {
  devices?: Device[];
  archs?: Arch[];
  batch?: Partial<Record<Arch, number>>;
  inputSize?: Partial<Record<Arch, number>>;
  policy?: RepPolicy;
  log?: Log;
}

export interface ActivationsRow {
  device: Device;
  arch: Arch;
  shape: string;
  float32Bytes: number;
  float16Bytes: number;
  float32Ms: number;
  float16Ms: number;
  /** max |d loss/d x (float16) - d loss/d x (float32)| / max |d loss/d x (float32)|. */
  inputGradRelError: number;
}

interface StepResult {
  forwardBytes: number;
  inputGrad: Float32Array;
}

/** One step; returns the bytes alive at the end of the forward and d loss / d input. */
async function step(backend: Backend, run: ReturnType<typeof buildBackbone>, input: Float32Array, weights: Float32Array, shape: number[], mode: ForwardMode): Promise<StepResult> {
  let forwardBytes = 0;
  const before = backend.stats().bytesLive;
  const x = tensor(backend, input, shape, { requiresGrad: true });
  tidy(() => {
    const y = run.net.forward(x, mode);
    forwardBytes = backend.stats().bytesLive - before;
    backward(sum(mul(y, tensor(backend, weights, y.shape))));
    return [];
  });
  const inputGrad = (await x.grad!.data()) as Float32Array;
  x.dispose();
  for (const p of run.net.parameters) {
    p.tensor.grad?.dispose();
    p.tensor.grad = null;
  }
  return { forwardBytes, inputGrad };
}

export async function run(o: ActivationsBenchOptions = {}): Promise<ActivationsRow[]> {
  const log = o.log ?? console.log;
  const policy = o.policy ?? { budgetMs: 10_000, minReps: 1, maxReps: 5 };
  const rows: ActivationsRow[] = [];
  for (const device of o.devices ?? ['webgpu', 'cpu']) {
    const backend = await ourBackend(device);
    try {
      for (const arch of o.archs ?? ['smallnet', 'mobilefacenet']) {
        const size = o.inputSize?.[arch] ?? DEFAULT_INPUT_SIZE[arch];
        const batch = o.batch?.[arch] ?? (arch === 'smallnet' ? 32 : 2);
        const shape = [batch, 3, size, size];
        const net = buildBackbone(arch, backend, size);
        const rng = createRng(4);
        const input = Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal());
        const weights = Float32Array.from({ length: batch * net.embedding }, () => rng.normal());
        const results: Record<'float32' | 'float16', { bytes: number; ms: number; grad: Float32Array }> = {} as never;
        for (const storage of ['float32', 'float16'] as const) {
          // Training mode without dropout noise between the two: the same seed on every step.
          const mode: ForwardMode = { training: true, seed: 1, activationStorage: storage };
          const first = await step(backend, net, input, weights, shape, mode);
          const timing = await timeSteps(async () => {
            await step(backend, net, input, weights, shape, mode);
          }, policy);
          results[storage] = { bytes: first.forwardBytes, ms: timing.ms, grad: first.inputGrad };
        }
        net.net.dispose();
        rows.push({
          device, arch, shape: shape.join('x'),
          float32Bytes: results.float32.bytes, float16Bytes: results.float16.bytes,
          float32Ms: results.float32.ms, float16Ms: results.float16.ms,
          inputGradRelError: maxRelError(results.float16.grad, results.float32.grad),
        });
      }
    } finally {
      backend.dispose();
    }
  }
  printTable(log, ['device', 'network', 'input', 'float32 MiB', 'float16 MiB', 'bytes f16/f32', 'float32 ms', 'float16 ms', 'time f16/f32', 'dx rel. error'],
    rows.map((r) => [
      r.device, r.arch, r.shape, mib(r.float32Bytes), mib(r.float16Bytes), fmt(r.float16Bytes / r.float32Bytes, 3),
      fmt(r.float32Ms, 0), fmt(r.float16Ms, 0), fmt(r.float16Ms / r.float32Ms, 2), r.inputGradRelError.toExponential(1),
    ]));
  return rows;
}
