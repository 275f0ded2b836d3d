/**
 * What one training step of the MLP example costs in dispatches and bytes: an MLP (linear, relu,
 * linear) under an ArcFace head, with gradient clipping and an SGD step: the network of the engine's
 * end-to-end test (which uses a NormFace head) at benchmark size. Per step it counts the kernels dispatched, the command
 * buffers submitted (WebGPU), the bytes moved between host and device, and the bytes the kernels
 * read and write (each input read and each output written once, as for the loss head).
 *
 * Run alone: bash tooling/test-env.sh node --conditions=@fr/source --import tsx apps/bench/src/mlp.bench.ts
 */
import { pathToFileURL } from 'node:url';
import { arcface } from '@fr/arcface';
import {
  backward, clipGradNorm, createRng, kaimingUniform, linear, relu, sgd, tensor, tidy, type Backend, type NamedTensor,
} from '@fr/core';
import {
  emptyTraffic, fmt, hookedBackend, ourBackend, ourTrafficHook, printTable, timeSteps, type Device, type Log, type RepPolicy, type Traffic,
} from './common.js';

export interface MlpShape {
  batch: number;
  input: number;
  hidden: number;
  embedding: number;
  classes: number;
}

export interface MlpBenchOptions {
  devices?: Device[];
  shape?: MlpShape;
  policy?: RepPolicy;
  log?: Log;
}

export interface MlpRow {
  device: Device;
  shape: MlpShape;
  ms: number;
  reps: number;
  loss: number;
  /** Loss of the counted step (the second), the same on every device. */
  /** Per step, counted on the step after the warm-up. */
  dispatches: number;
  submits: number | null;
  hostBytesWritten: number;
  hostBytesRead: number;
  kernels: Traffic;
}

export const DEFAULT_MLP: MlpShape = { batch: 128, input: 512, hidden: 512, embedding: 128, classes: 1000 };

/** One device: builds the MLP and head, counts one step, then times steps under the policy. */
async function benchDevice(device: Device, shape: MlpShape, policy: RepPolicy): Promise<MlpRow> {
  const raw = await ourBackend(device);
  const { backend, hook } = hookedBackend(raw);
  try {
    const rng = createRng(7);
    const param = (name: string, dims: number[], init: Float32Array): NamedTensor => ({ name, tensor: tensor(backend, init, dims, { requiresGrad: true, name }) });
    const layers = [
      param('fc1.weight', [shape.hidden, shape.input], kaimingUniform(rng, [shape.hidden, shape.input])),
      param('fc1.bias', [shape.hidden], new Float32Array(shape.hidden)),
      param('fc2.weight', [shape.embedding, shape.hidden], kaimingUniform(rng, [shape.embedding, shape.hidden])),
      param('fc2.bias', [shape.embedding], new Float32Array(shape.embedding)),
    ];
    const head = arcface.createHead({ backend, numClasses: shape.classes, embeddingDim: shape.embedding, params: arcface.params.parse({}), rng });
    const all = [...layers, ...head.parameters];
    const optimizer = sgd(all, { momentum: 0.9, weightDecay: 5e-4 });
    const x = Float32Array.from({ length: shape.batch * shape.input }, () => rng.normal());
    const labels = Int32Array.from({ length: shape.batch }, () => rng.int(shape.classes));
    let loss = NaN;
    const step = async () => {
      const l = tidy(() => {
        const h = relu(linear(tensor(backend, x, [shape.batch, shape.input]), layers[0].tensor, layers[1].tensor));
        const out = head.forward(linear(h, layers[2].tensor, layers[3].tensor), labels);
        backward(out);
        clipGradNorm(all, 5).dispose();
        optimizer.step(0.1);
        optimizer.zeroGrad();
        return out;
      });
      loss = await l.item();
      l.dispose();
    };
    await step(); // compiles the pipelines, fills the pools
    const before = raw.stats() as ReturnType<Backend['stats']> & { submits?: number };
    const kernels = emptyTraffic();
    hook.current = ourTrafficHook(kernels);
    await step();
    hook.current = null;
    const countedLoss = loss;
    const after = raw.stats() as typeof before;
    const timing = await timeSteps(step, policy);
    optimizer.dispose();
    head.dispose();
    for (const p of layers) p.tensor.dispose();
    return {
      device, shape, ms: timing.ms, reps: timing.reps, loss: countedLoss,
      dispatches: after.dispatches - before.dispatches,
      submits: after.submits === undefined || before.submits === undefined ? null : after.submits - before.submits,
      hostBytesWritten: after.bytesWritten - before.bytesWritten,
      hostBytesRead: after.bytesRead - before.bytesRead,
      kernels,
    };
  } finally {
    raw.dispose();
  }
}

export async function run(o: MlpBenchOptions = {}): Promise<MlpRow[]> {
  const log = o.log ?? console.log;
  const shape = o.shape ?? DEFAULT_MLP;
  const policy = o.policy ?? { budgetMs: 5_000, minReps: 1, maxReps: 10 };
  log(`MLP example: ${shape.input} -> ${shape.hidden} (relu) -> ${shape.embedding}, ArcFace head over ${shape.classes} classes, batch ${shape.batch}; forward, backward, clip, SGD step`);
  const rows: MlpRow[] = [];
  for (const device of o.devices ?? ['webgpu', 'cpu']) rows.push(await benchDevice(device, shape, policy));
  printTable(log, ['device', 'ms/step', 'steps', 'dispatches', 'submits', 'host bytes up', 'host bytes down', 'kernel MB read', 'kernel MB written', 'loss'],
    rows.map((r) => [
      r.device, fmt(r.ms), String(r.reps), String(r.dispatches), r.submits === null ? '-' : String(r.submits), String(r.hostBytesWritten),
      String(r.hostBytesRead), fmt(r.kernels.read / 2 ** 20, 2), fmt(r.kernels.written / 2 ** 20, 2), r.loss.toFixed(4),
    ]));
  const uncounted = [...new Set(rows.flatMap((r) => r.kernels.uncounted))];
  if (uncounted.length) log(`  kernels without a traffic rule (counted as 0 bytes): ${uncounted.join(', ')}`);
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
