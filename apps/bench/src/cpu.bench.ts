/**
 * `pnpm bench -- --only cpu`: the CPU backends in one process. Kernels (matmul, convolutions) of
 * our wasm backend at 1 thread and at every core, of our TypeScript `cpu` backend, and of
 * @tensorflow/tfjs-backend-wasm (XNNPACK, SIMD, one thread in Node); then the ArcFace head step
 * and the backbones' training steps, ours against tfjs on the `wasm` and `cpu` devices.
 * GFLOP/s are also given as a fraction of this machine's single-thread SIMD peak, measured by
 * @fr/backend-wasm's `measurePeakFlops` (register-only 128-bit multiplies and adds).
 * tfjs-backend-wasm cannot train the backbones (it has no Conv2DBackpropFilter kernel), so their
 * training steps compare our wasm backend with our TypeScript one.
 * PyTorch on the CPU (src/torch-peer.ts) is printed beside ours when Debian's python3 has torch:
 * matmul, the ArcFace head step on the same data, and insightface's MobileFaceNet training step.
 */
import { measurePeakFlops } from '@fr/backend-wasm';
import { backward, createRng, mul, scale, sum, tensor, tidy, type Backend, type Conv2dParams } from '@fr/core';
import { buildBackbone, type Arch } from './backbone.bench.js';
import { fmt, ourBackend, printTable, tfjs, timeSteps, timeStepsInTurn, wasmBackendWith, type Log, type RepPolicy, type Tf } from './common.js';
import { problem, run as runHead } from './head.bench.js';
import { arcfaceHeadPeer, torchPeerStart, type TorchPeerOptions } from './torch-peer-rows.js';

export interface CpuBenchOptions {
  matmuls?: [string, number, number, number, boolean][];
  convs?: [string, Conv2dParams][];
  policy?: RepPolicy;
  /** The head and backbone steps (false in quick runs of the kernels only). */
  steps?: { classes: number; batch: number; dim: number; backboneBatches: number[] } | null;
  /** PyTorch as a peer; default: Debian's python3 without an insightface checkout; null: not run. */
  torch?: TorchPeerOptions | null;
  log?: Log;
}

const conv = (batch: number, c: number, size: number, groups: number): Conv2dParams => ({
  batch, inChannels: c, inHeight: size, inWidth: size, outChannels: c, kernelH: 3, kernelW: 3,
  strideH: 1, strideW: 1, padH: 1, padW: 1, groups, outHeight: size, outWidth: size,
});

export const CPU_MATMULS: [string, number, number, number, boolean][] = [
  ['256^3', 256, 256, 256, false],
  ['512^3', 512, 512, 512, false],
  ['1024^3', 1024, 1024, 1024, false],
  ['128x512 @ (10000x512)^T', 128, 10000, 512, true],
];
export const CPU_CONVS: [string, Conv2dParams][] = [
  ['conv 3x3 64->64, 8x64x56x56', conv(8, 64, 56, 1)],
  ['depthwise 3x3, 8x64x56x56', conv(8, 64, 56, 64)],
];

function random(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

function upload(b: Backend, data: Float32Array): unknown {
  const buf = b.alloc(data.length, 'float32');
  b.write(buf, data);
  return buf;
}

/** A peer's step over its own copies of the inputs, and how to free them. */
interface PeerStep {
  step: () => Promise<void>;
  dispose: () => void;
}

/**
 * Median ms of `call` on each backend and of the peer's step, all taking turns step by step
 * (timeStepsInTurn): the ratios against the peer hold while the machine's speed drifts too.
 */
async function timeInTurn(backends: Backend[], sizes: number[], outSize: number, call: (b: Backend, bufs: unknown[], out: unknown) => void, peer: PeerStep | null, policy: RepPolicy): Promise<number[]> {
  const sides = backends.map((b) => ({ b, bufs: sizes.map((n, i) => upload(b, random(n, i + 1))), out: b.alloc(outSize, 'float32') }));
  const steps = sides.map((s) => async () => {
    call(s.b, s.bufs, s.out);
    await s.b.sync();
  });
  const t = await timeStepsInTurn(peer ? [...steps, peer.step] : steps, policy);
  for (const s of sides) for (const x of [...s.bufs, s.out]) s.b.free(x);
  peer?.dispose();
  return t.map((x) => x.ms);
}

/** tfjs running `op` on inputs of `shapes` (the same random values as ours). */
function tfjsStep(tf: Tf, shapes: number[][], op: (xs: ReturnType<Tf['tensor']>[]) => ReturnType<Tf['tensor']>): PeerStep {
  const xs = shapes.map((s, i) => tf.tensor(random(s.reduce((a, b) => a * b, 1), i + 1), s));
  return {
    async step() {
      const y = op(xs);
      await y.data();
      y.dispose();
    },
    dispose: () => xs.forEach((x) => x.dispose()),
  };
}

export async function run(o: CpuBenchOptions = {}): Promise<void> {
  const log = o.log ?? console.log;
  // Up to 200 timed steps: a sub-millisecond product's median over ten moved by a tenth from run to run.
  const policy = o.policy ?? { budgetMs: 3_000, minReps: 2, maxReps: 200 };
  const peak = await measurePeakFlops();
  const one = await wasmBackendWith(1);
  const all = await ourBackend('wasm');
  const ts = await ourBackend('cpu');
  const threads = (all.capabilities as { threads?: number }).threads ?? 1;
  const tf = await tfjs('wasm');
  log(`single-thread SIMD peak (measured, 12 independent 128-bit mul+add chains): ${fmt(peak)} GFLOP/s; wasm backend at ${threads} threads: ${all.capabilities.description}`);
  log(`tfjs-backend-wasm: SIMD ${tf.env().getBool('WASM_HAS_SIMD_SUPPORT')}, threads ${tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT')}`);
  const gf = (flops: number, ms: number) => flops / ms / 1e6;
  const matmuls = o.matmuls ?? CPU_MATMULS;
  const peer = await torchPeerStart(o.torch, log);
  const torchMm = await peer.matmul(matmuls.map(([name, m, n, k, transB]) => ({ name, m, n, k, transB })));
  const rows: (string | number)[][] = [];
  for (const [name, m, n, k, transB] of matmuls) {
    const p = { m, n, k, transA: false, transB, alpha: 1, beta: 0 };
    const mm = (bs: Backend[], tfPeer: PeerStep | null) => timeInTurn(bs, [m * k, k * n], m * n, (b, [a, bb], out) => b.kernels.matmul(a, bb, out, p), tfPeer, policy);
    const [o1, oN, tfMs] = await mm([one, all], tfjsStep(tf, [[m, k], transB ? [n, k] : [k, n]], ([a, b]) => tf.matMul(a, b, false, transB)));
    const [oTs] = await mm([ts], null);
    const flops = 2 * m * n * k;
    const pt = torchMm?.rows.find((r) => r.name === name);
    rows.push([`matmul ${name}`, fmt(gf(flops, o1)), fmt(gf(flops, oN)), fmt(gf(flops, oTs)), fmt(gf(flops, tfMs)),
      pt ? fmt(gf(flops, pt.ms1)) : 'not run', pt ? fmt(gf(flops, pt.msN)) : 'not run', fmt(tfMs / o1, 2), fmt(o1 / oN, 2), fmt(gf(flops, o1) / peak, 2)]);
    log(`  ${rows.at(-1)!.join('  ')}`);
  }
  for (const [name, p] of o.convs ?? CPU_CONVS) {
    const xs = p.batch * p.inChannels * p.inHeight * p.inWidth;
    const ws = p.outChannels * (p.inChannels / p.groups) * 9;
    const os = p.batch * p.outChannels * p.outHeight * p.outWidth;
    const cv = (bs: Backend[], tfPeer: PeerStep | null) => timeInTurn(bs, [xs, ws], os, (b, [x, w], out) => b.kernels.conv2d(x, w, out, p), tfPeer, policy);
    const nhwc = [p.batch, p.inHeight, p.inWidth, p.inChannels];
    const tfPeer = p.groups === 1
      ? tfjsStep(tf, [nhwc, [3, 3, p.inChannels, p.outChannels]], ([x, w]) => tf.conv2d(x as never, w as never, 1, 'same'))
      : tfjsStep(tf, [nhwc, [3, 3, p.inChannels, 1]], ([x, w]) => tf.depthwiseConv2d(x as never, w as never, 1, 'same'));
    const [o1, oN, tfMs] = await cv([one, all], tfPeer);
    const [oTs] = await cv([ts], null);
    const flops = 2 * os * (p.inChannels / p.groups) * 9;
    rows.push([name, fmt(gf(flops, o1)), fmt(gf(flops, oN)), fmt(gf(flops, oTs)), fmt(gf(flops, tfMs)), '-', '-', fmt(tfMs / o1, 2), fmt(o1 / oN, 2), fmt(gf(flops, o1) / peak, 2)]);
    log(`  ${rows.at(-1)!.join('  ')}`);
  }
  log(`Kernels, GFLOP/s (median step; wasm at 1 and ${threads} threads and tfjs-wasm timed in turns, step by step; forward only for convolutions; tfjs convolutions in NHWC, its layout):`);
  printTable(log, ['kernel', 'wasm 1 thread', `wasm ${threads} threads`, 'cpu (TS)', 'tfjs-wasm', 'PyTorch 1 thread', `PyTorch ${peer.threads} threads`, 'tfjs-wasm ms / wasm 1 thread ms', `wasm ${threads} threads speed-up`, 'wasm 1 thread / SIMD peak'], rows);
  one.dispose();
  if (o.steps === null) return;
  const s = o.steps ?? { classes: 10_000, batch: 128, dim: 512, backboneBatches: [8, 32] };
  const heads = await runHead({ devices: ['wasm', 'cpu'], losses: ['arcface'], classes: [s.classes], batch: s.batch, dim: s.dim, log, policy: { budgetMs: 8_000, minReps: 1, maxReps: 10 } });
  const ourHead = heads.find((r) => r.device === 'wasm' && r.loss === 'arcface')!;
  await arcfaceHeadPeer(peer, ourHead, problem(s.batch, s.dim, s.classes), threads, log);
  const torchMbf = await peer.mobilefacenet(s.backboneBatches, 112);
  const steps: (string | number)[][] = [];
  const parameters: Partial<Record<Arch, number>> = {};
  for (const [arch, size] of [['smallnet', 32], ['mobilefacenet', 112]] as [Arch, number][]) {
    for (const batch of s.backboneBatches) {
      const w = await backboneStepMs(all, arch, batch, size, parameters);
      // The TypeScript backend only at the smallest batch: MobileFaceNet takes it seconds per step.
      const c = batch === s.backboneBatches[0] ? await backboneStepMs(ts, arch, batch, size, parameters) : NaN;
      const pt = arch === 'mobilefacenet' ? torchMbf?.rows.find((r) => r.batch === batch) : undefined;
      steps.push([`${arch} ${batch}x3x${size}x${size}`, fmt(w), fmt(c), Number.isNaN(c) ? 'not run' : fmt(c / w, 2),
        pt ? fmt(pt.ms) : arch === 'mobilefacenet' ? 'not run' : '-', pt ? fmt(w / pt.ms, 2) : '-']);
      log(`  ${steps.at(-1)!.join('  ')}`);
    }
  }
  log('Backbone training steps (forward, loss = sum(embedding * R) / N, backward), median ms:');
  if (torchMbf) log(`  PyTorch: insightface get_mbf(fp16=False, num_features=512), ${torchMbf.parameters} parameters (ours ${parameters.mobilefacenet}), train mode, median of ${peer.mobilefacenetSteps}`);
  printTable(log, ['network, input', `wasm ${threads} threads ms`, 'cpu (TS) ms', 'cpu / wasm', `PyTorch ${peer.threads} threads ms`, 'wasm / PyTorch'], steps);
  all.dispose();
  ts.dispose();
}

/** Median ms of one training step of a backbone on `backend` (at most 5 steps within 10 s); records its parameter count. */
async function backboneStepMs(backend: Backend, arch: Arch, N: number, S: number, parameters: Partial<Record<Arch, number>>): Promise<number> {
  const { net, embedding } = buildBackbone(arch, backend, S);
  parameters[arch] = net.parameters.reduce((a, p) => a + p.tensor.shape.reduce((x, y) => x * y, 1), 0);
  const x = tensor(backend, random(N * 3 * S * S, 11), [N, 3, S, S]);
  const r = tensor(backend, random(N * embedding, 12), [N, embedding]);
  const step = async () => {
    for (const p of net.parameters) {
      p.tensor.grad?.dispose();
      p.tensor.grad = null;
    }
    const l = tidy(() => {
      const out = scale(sum(mul(net.forward(x, { training: true }), r)), 1 / N);
      backward(out);
      return out;
    });
    await l.item();
    l.dispose();
  };
  const t = await timeSteps(step, { budgetMs: 10_000, minReps: 1, maxReps: 5 });
  for (const p of net.parameters) p.tensor.grad?.dispose();
  x.dispose();
  r.dispose();
  net.dispose();
  return t.ms;
}
