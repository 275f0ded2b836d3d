/**
 * Where a training step's time goes, kernel by kernel: one step of a backbone (forward, a scalar
 * loss, backward) is recorded through a hooked kernel table, then every recorded kernel is replayed
 * alone and timed to completion (`sync`). Replaying one kernel at a time removes batching, so the
 * sum is above the step time; the shares are what this is for.
 *
 * Run: bash tooling/test-env.sh node --conditions=@fr/source --import tsx apps/bench/src/kernel-profile.ts [smallnet|mobilefacenet|arcface-head] [batch] [cpu|webgpu|wasm]
 * (arcface-head: the ArcFace head step, batch x 512 embeddings over 10,000 classes).
 */
import { pathToFileURL } from 'node:url';
import { arcface } from '@fr/arcface';
import { backward, createRng, mul, parseLossParams, sum, tensor, tidy, type Backend, type Tensor } from '@fr/core';
import { buildBackbone, DEFAULT_INPUT_SIZE, type Arch } from './backbone.bench.js';
import { fmt, hookedBackend, ourBackend, printTable, type Device, type Log } from './common.js';

/** For convolutions, the kind: 1x1, depthwise or k x k (they take different code paths). */
function convKind(args: unknown[]): string {
  const c = args[3] as { kernelH?: number; kernelW?: number; groups?: number; inChannels?: number; strideH?: number } | undefined;
  if (!c || typeof c !== 'object' || c.kernelH === undefined) return '';
  const kind = c.groups === c.inChannels && c.groups! > 1 ? 'depthwise' : c.groups! > 1 ? `groups ${c.groups}` : 'dense';
  return ` ${c.kernelH}x${c.kernelW} ${kind} stride ${c.strideH}`;
}

export interface KernelProfileRow {
  kernel: string;
  calls: number;
  ms: number;
  share: number;
}

/** Profiles one training step of a backbone; rows sorted by time, largest first. */
export async function profileStep(base: Backend, arch: Arch, batch: number): Promise<KernelProfileRow[]> {
  return profileRecorded(base, (backend) => {
    const inputSize = DEFAULT_INPUT_SIZE[arch];
    const { net, embedding } = buildBackbone(arch, backend, inputSize);
    const rng = createRng(2);
    const input = Float32Array.from({ length: batch * 3 * inputSize * inputSize }, () => rng.normal());
    const weights = Float32Array.from({ length: batch * embedding }, () => rng.normal());
    const loss = tidy(() => {
      const x = tensor(backend, input, [batch, 3, inputSize, inputSize]);
      const out = sum(mul(net.forward(x, { training: true, seed: 1 }), tensor(backend, weights, [batch, embedding])));
      backward(out);
      return out;
    });
    return { loss, dispose: () => {
      for (const p of net.parameters) p.tensor.grad?.dispose();
      net.dispose();
    } };
  });
}

/** Profiles one ArcFace head step (forward and backward, B x dim embeddings over `classes`). */
export async function profileHeadStep(base: Backend, batch: number, dim = 512, classes = 10_000): Promise<KernelProfileRow[]> {
  return profileRecorded(base, (backend) => {
    const head = arcface.createHead({ backend, numClasses: classes, embeddingDim: dim, params: parseLossParams(arcface, {}), rng: createRng(1) });
    const rng = createRng(2);
    const x = tensor(backend, Float32Array.from({ length: batch * dim }, () => rng.normal()), [batch, dim], { requiresGrad: true });
    const labels = Int32Array.from({ length: batch }, () => rng.int(classes));
    const loss = tidy(() => {
      const out = head.forward(x, labels);
      backward(out);
      return out;
    });
    return { loss, dispose: () => {
      x.grad?.dispose();
      x.dispose();
      for (const p of head.parameters) p.tensor.grad?.dispose();
      head.dispose();
    } };
  });
}

/** Records the kernels of `step` through a hooked table, then replays and times each alone. */
async function profileRecorded(base: Backend, step: (backend: Backend) => { loss: Tensor; dispose(): void }): Promise<KernelProfileRow[]> {
  const hooked = hookedBackend(base);
  const hook = hooked.hook;
  // Buffers freed during the step are kept until the replay is over, so every call can run again.
  const deferred: unknown[] = [];
  const backend = Object.create(hooked.backend, { free: { value: (b: unknown) => deferred.push(b) } }) as Backend;
  const calls: { name: string; run: () => void }[] = [];
  hook.current = (name, args) => {
    calls.push({ name: `${name}${convKind(args)}`, run: () => (base.kernels as unknown as Record<string, (...a: unknown[]) => void>)[name](...args) });
  };
  const recorded = step(backend);
  await recorded.loss.item();
  hook.current = null;
  // Warm every pipeline once, then time each call alone.
  for (const c of calls) c.run();
  await base.sync();
  const totals = new Map<string, { calls: number; ms: number }>();
  for (const c of calls) {
    const t0 = performance.now();
    c.run();
    await base.sync();
    const entry = totals.get(c.name) ?? { calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += performance.now() - t0;
    totals.set(c.name, entry);
  }
  recorded.loss.dispose();
  recorded.dispose();
  for (const b of deferred) base.free(b);
  const all = [...totals.values()].reduce((a, e) => a + e.ms, 0);
  return [...totals.entries()]
    .map(([kernel, e]) => ({ kernel, calls: e.calls, ms: e.ms, share: e.ms / all }))
    .sort((a, b) => b.ms - a.ms);
}

export function printProfile(rows: KernelProfileRow[], log: Log = console.log): void {
  printTable(log, ['kernel', 'calls', 'ms', 'share'], rows.map((r) => [r.kernel, String(r.calls), fmt(r.ms, 1), `${(r.share * 100).toFixed(1)}%`]));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const what = process.argv[2] ?? 'smallnet';
  const batch = Number(process.argv[3] ?? (what === 'arcface-head' ? 128 : 8));
  const device = (process.argv[4] ?? 'webgpu') as Device;
  const backend = await ourBackend(device);
  console.log(`kernel profile: ${what}, batch ${batch}, ${device}`);
  printProfile(await (what === 'arcface-head' ? profileHeadStep(backend, batch) : profileStep(backend, what as Arch, batch)));
  backend.dispose();
}
