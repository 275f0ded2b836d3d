/**
 * Backbone benchmark: one training step (forward, a scalar loss, backward to every parameter) of
 * smallnet (32x32) and MobileFaceNet (112x112) at batch 32, this project's backends against the
 * same network written with TensorFlow.js ops on the same device, starting from the same weights.
 *
 * The tfjs network is NHWC (tfjs's native layout) and ours NCHW; weights are permuted when copied,
 * and the input is transposed once outside the timed step. Differences from ours are listed in
 * `TFJS_DIFFERENCES`.
 *
 * Run alone: bash tooling/test-env.sh node --conditions=@fr/source --import tsx apps/bench/src/backbone.bench.ts
 */
import { pathToFileURL } from 'node:url';
import { mobilefacenet } from '@fr/mobilefacenet';
import { smallnet } from '@fr/smallnet';
import { backward, createRng, mul, scale, sum, tensor, tidy, type Backend, type Module } from '@fr/core';
import { timed } from './head.bench.js';
import {
  deviceBytes, fmt, hookedBackend, mib, onTfjsKernels, ourBackend, printTable, relDiff, sampleHost, tfjs, timeSteps,
  type Device, type HostPeak, type Log, type RepPolicy, type Tf,
} from './common.js';

type TfTensor = import('@tensorflow/tfjs-core').Tensor;
type TfVariable = import('@tensorflow/tfjs-core').Variable;

export type Arch = 'smallnet' | 'mobilefacenet';

export const TFJS_DIFFERENCES = [
  'tfjs does not update batch-norm running statistics (ours does: two C-length vector updates per BN layer)',
  'MobileFaceNet\'s grouped 3x3 conv (128 channels, 64 groups) is a depthwise conv with channel multiplier 2 followed by a sum over each group\'s 2 inputs (tfjs has no grouped conv); same arithmetic',
];

export interface BackboneRow {
  arch: Arch;
  device: Device;
  batch: number;
  inputSize: number;
  oursMs: number;
  tfjsMs: number;
  ratio: number;
  /** Timed steps after the warm-up (0: the warm-up step is the figure). */
  oursReps: number;
  tfjsReps: number;
  /** false: extrapolated from the probe (its step was predicted over the cap), not run at full size. */
  oursMeasured: boolean;
  tfjsMeasured: boolean;
  /** The small-shape step that predicted the full one (warm-up step only, compilation included). */
  probe: { shape: string; oursMs: number; tfjsMs: number } | null;
  /** Shape at which the two losses were compared. */
  checkShape: string;
  oursImagesPerSecond: number;
  tfjsImagesPerSecond: number;
  oursLoss: number;
  tfjsLoss: number;
  lossRelDiff: number;
  /** Peaks over one step, sampled after every kernel. */
  ours: MemoryPeak;
  tfjs: MemoryPeak;
}

export interface MemoryPeak {
  rss: number;
  arrayBuffers: number;
  /** Ours: backend.stats().bytesLive; tfjs: numBytesInGPU (webgpu) or tf.memory().numBytes (cpu). */
  deviceBytes: number;
}

export interface BackboneBenchOptions {
  devices?: Device[];
  archs?: Arch[];
  batch?: number;
  /** Input side per architecture (defaults 32 and 112). */
  inputSize?: Partial<Record<Arch, number>>;
  policy?: RepPolicy;
  /**
   * A side whose full step is predicted (from one step at the probe shape, or at twice its side
   * after a first step there that compiles the shaders; linearly in batch x
   * pixels) slower than this is not run at full size; its figures are the prediction.
   */
  maxStepMs?: number;
  probe?: { batch: number; size: number };
  /** Configurations left out, with the reason printed in their place. */
  skip?: { device: Device; arch: Arch; reason: string }[];
  log?: Log;
}

export const BACKBONE_POLICY: RepPolicy = { budgetMs: 15_000, minReps: 1, maxReps: 10 };

/** Input side of each network in the default run. */
export const DEFAULT_INPUT_SIZE: Record<Arch, number> = { smallnet: 32, mobilefacenet: 112 };

/** The network as its plugin builds it, at `inputSize`, with a fixed initialisation. */
export function buildBackbone(arch: Arch, backend: Backend, inputSize: number): { net: Module; embedding: number } {
  const rng = createRng(3);
  if (arch === 'smallnet') {
    const params = smallnet.params.parse({ inputSize });
    return { net: smallnet.build({ backend, params, rng }), embedding: smallnet.embeddingDim(params) };
  }
  const params = mobilefacenet.params.parse({ inputSize });
  return { net: mobilefacenet.build({ backend, params, rng }), embedding: mobilefacenet.embeddingDim(params) };
}

interface Weight {
  data: Float32Array;
  shape: readonly number[];
  trainable: boolean;
}

// ---------------------------------------------------------------------------------------------
// The tfjs network: the same structure as the @fr builders, walked once to create the variables
// (build) and then on every step (run).

interface TfjsNet {
  forward(x: TfTensor): TfTensor;
  variables: TfVariable[];
  dispose(): void;
}

function tfjsNet(tf: Tf, arch: Arch, weights: Map<string, Weight>, inputSize: number): TfjsNet {
  const made = new Map<string, TfTensor>();
  const variables: TfVariable[] = [];
  const get = (name: string, convert: (w: Weight) => { data: Float32Array; shape: number[] }): TfTensor => {
    let t = made.get(name);
    if (!t) {
      const w = weights.get(name);
      if (!w) throw new Error(`tfjs ${arch}: no weight ${name}`);
      const c = convert(w);
      const value = tf.tensor(c.data, c.shape);
      if (w.trainable) {
        t = tf.variable(value);
        variables.push(t as TfVariable);
        value.dispose();
      } else {
        t = value;
      }
      made.set(name, t);
    }
    return t;
  };
  const asIs = (w: Weight) => ({ data: w.data, shape: [...w.shape] });
  let running = false;

  /** OIHW -> tfjs filter: HWIO for groups = 1, HW C 1 (depthwise) or HW C 2 (two per group). */
  const conv = (name: string, x: TfTensor, o: { stride?: number; pad?: number; groups?: number }): TfTensor => {
    const groups = o.groups ?? 1;
    const f = get(`${name}.weight`, (w) => {
      const [O, Ig, kh, kw] = w.shape;
      const src = w.data;
      if (groups === 1) {
        const out = new Float32Array(src.length);
        for (let oc = 0; oc < O; oc++) for (let i = 0; i < Ig; i++) for (let h = 0; h < kh; h++) for (let v = 0; v < kw; v++) {
          out[((h * kw + v) * Ig + i) * O + oc] = src[((oc * Ig + i) * kh + h) * kw + v];
        }
        return { data: out, shape: [kh, kw, Ig, O] };
      }
      // Input channel c = g * Ig + i feeds outputs g * Ig + j (j < Ig, so O = groups * Ig here):
      // multiplier j of channel c holds w[g * Ig + j, i].
      const per = O / groups;
      if (per !== Ig) throw new Error(`tfjs ${arch}: grouped conv ${name} with ${Ig} inputs and ${per} outputs per group is not supported`);
      const C = groups * Ig;
      const out = new Float32Array(kh * kw * C * per);
      for (let g = 0; g < groups; g++) for (let i = 0; i < Ig; i++) for (let j = 0; j < per; j++) for (let h = 0; h < kh; h++) for (let v = 0; v < kw; v++) {
        out[((h * kw + v) * C + g * Ig + i) * per + j] = src[(((g * per + j) * Ig + i) * kh + h) * kw + v];
      }
      return { data: out, shape: [kh, kw, C, per] };
    });
    if (!running) return x;
    const stride = o.stride ?? 1, pad = o.pad ?? 0;
    if (groups === 1) return tf.conv2d(x as never, f as never, stride, pad);
    const y: TfTensor = tf.depthwiseConv2d(x as never, f as never, stride, pad);
    const ig = f.shape[3]!;
    if (ig === 1) return y;
    // [N, H, W, groups, i, j] summed over i: output channel g * ig + j.
    const [n, h, w] = y.shape;
    return tf.reshape(tf.sum(tf.reshape(y, [n, h, w, groups, ig, ig]), 4), [n, h, w, groups * ig]);
  };
  const bn = (name: string, x: TfTensor): TfTensor => {
    const gamma = get(`${name}.weight`, asIs);
    const beta = get(`${name}.bias`, asIs);
    if (!running) return x;
    const { mean, variance } = tf.moments(x, x.rank === 4 ? [0, 1, 2] : [0]);
    return tf.batchNorm(x, mean, variance, beta, gamma, 1e-5);
  };
  const prelu = (name: string, x: TfTensor): TfTensor => {
    const a = get(`${name}.weight`, asIs);
    return running ? tf.prelu(x, a) : x;
  };
  const convBlock = (name: string, x: TfTensor, o: { stride?: number; pad?: number; groups?: number }, act = true): TfTensor => {
    let y = bn(`${name}.layers.1`, conv(`${name}.layers.0`, x, o));
    if (act) y = prelu(`${name}.layers.2`, y);
    return y;
  };
  const depthWise = (name: string, x: TfTensor, groups: number, stride: number, residual: boolean): TfTensor => {
    let y = convBlock(`${name}.layers.0`, x, {});
    y = convBlock(`${name}.layers.1`, y, { stride, pad: 1, groups });
    y = convBlock(`${name}.layers.2`, y, {}, false);
    return residual && running ? tf.add(x, y) : y;
  };
  const residualStage = (name: string, x: TfTensor, count: number, groups: number): TfTensor => {
    for (let i = 0; i < count; i++) x = depthWise(`${name}.layers.${i}`, x, groups, 1, true);
    return x;
  };
  const flatten = (x: TfTensor) => (running ? tf.reshape(x, [x.shape[0], -1]) : x);

  let forward: (x: TfTensor) => TfTensor;
  if (arch === 'smallnet') {
    const p = smallnet.params.parse({ inputSize });
    const side = inputSize / 2 ** p.stages;
    forward = (x) => {
      let channels = 3;
      for (let s = 1; s <= p.stages; s++) {
        x = prelu(`stage${s}.prelu`, bn(`stage${s}.bn`, conv(`stage${s}.conv`, x, { stride: 2, pad: 1 })));
        channels = p.width * 2 ** (s - 1);
      }
      x = flatten(bn('bn2', x));
      // Our fc reads the NCHW flatten order (c, h, w); tfjs flattens NHWC as (h, w, c).
      const fcW = get('fc.weight', (w) => {
        const [E] = w.shape;
        const hw = side * side;
        const out = new Float32Array(w.data.length);
        for (let e = 0; e < E; e++) for (let c = 0; c < channels; c++) for (let q = 0; q < hw; q++) {
          out[(q * channels + c) * E + e] = w.data[e * channels * hw + c * hw + q];
        }
        return { data: out, shape: [hw * channels, E] };
      });
      const fcB = get('fc.bias', asIs);
      if (running) x = tf.add(tf.matMul(x as never, fcW as never), fcB);
      return bn('features', x);
    };
  } else {
    const p = mobilefacenet.params.parse({ inputSize });
    const [b0, b1, b2, b3] = p.blocks;
    forward = (x) => {
      x = convBlock('layers.0', x, { stride: 2, pad: 1 });
      x = b0 === 1 ? convBlock('layers.1', x, { pad: 1, groups: 64 }) : residualStage('layers.1', x, b0, 128);
      x = depthWise('layers.2', x, 128, 2, false);
      x = residualStage('layers.3', x, b1, 128);
      x = depthWise('layers.4', x, 256, 2, false);
      x = residualStage('layers.5', x, b2, 256);
      x = depthWise('layers.6', x, 512, 2, false);
      x = residualStage('layers.7', x, b3, 256);
      x = convBlock('conv_sep', x, {});
      x = flatten(convBlock('features.layers.0', x, { groups: 512 }, false));
      const fc = get('features.layers.2.weight', asIs);
      if (running) x = tf.matMul(x as never, fc as never, false, true);
      return bn('features.layers.3', x);
    };
  }
  const dummy = tf.scalar(0);
  forward(dummy); // build: creates every tensor, computes nothing
  dummy.dispose();
  running = true;
  return {
    forward,
    variables,
    dispose() {
      for (const t of made.values()) t.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------

function randomData(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** NCHW -> NHWC. */
function toNhwc(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) out[(b * h * w + i) * c + k] = x[(b * c + k) * h * w + i];
  return out;
}

interface SideResult {
  ms: number;
  reps: number;
  loss: number;
  mem: MemoryPeak;
}

/**
 * Builds ours at (N, S), copies its weights into the tfjs network, and runs the sides asked for:
 * a warm-up step (the loss, and memory peaks sampled after every kernel), then timed steps.
 */
async function runPair(
  tf: Tf, raw: Backend, device: Device, arch: Arch, N: number, S: number, policy: RepPolicy, sides: { ours: boolean; tfjs: boolean },
): Promise<{ ours: SideResult | null; tfjs: SideResult | null }> {
  const { backend, hook } = hookedBackend(raw);
  const { net, embedding } = buildBackbone(arch, backend, S);
  const xHost = randomData(N * 3 * S * S, 11);
  const rHost = randomData(N * embedding, 12);
  // The tfjs copy starts from the weights ours has now (before any of our steps).
  const weights = new Map<string, Weight>();
  for (const p of net.parameters) {
    weights.set(p.name, { data: (await p.tensor.data()) as Float32Array, shape: p.tensor.shape, trainable: p.tensor.requiresGrad });
  }
  let ours: SideResult | null = null;
  if (sides.ours) {
    const x = tensor(backend, xHost, [N, 3, S, S]);
    const r = tensor(backend, rHost, [N, embedding]);
    const clear = () => {
      for (const p of net.parameters) {
        p.tensor.grad?.dispose();
        p.tensor.grad = null;
      }
    };
    // loss = sum(embedding * R) / N: a fixed random projection, so every parameter gets a
    // gradient (a sum of squares would be constant after the final batch norm).
    const step = async () => {
      clear();
      const l = tidy(() => {
        const out = scale(sum(mul(net.forward(x, { training: true }), r)), 1 / N);
        backward(out);
        return out;
      });
      const v = await l.item();
      l.dispose();
      return v;
    };
    const peak: HostPeak = { rss: 0, arrayBuffers: 0 };
    let devicePeak = 0;
    global.gc?.();
    sampleHost(peak);
    hook.current = () => {
      sampleHost(peak);
      devicePeak = Math.max(devicePeak, deviceBytes(raw).live);
    };
    const loss = await step();
    hook.current = null;
    const t = await timeSteps(async () => { await step(); }, policy);
    ours = { ms: t.ms, reps: t.reps, loss, mem: { ...peak, deviceBytes: devicePeak } };
    clear();
    x.dispose();
    r.dispose();
  }
  net.dispose();

  let theirs: SideResult | null = null;
  if (sides.tfjs) {
    const tnet = tfjsNet(tf, arch, weights, S);
    const tx = tf.tensor4d(toNhwc(xHost, N, 3, S, S), [N, S, S, 3]);
    const tr = tf.tensor2d(rHost, [N, embedding]);
    const step = async () => {
      const { value, grads } = tf.variableGrads(() => tf.div(tf.sum(tf.mul(tnet.forward(tx), tr)), N) as never, tnet.variables);
      const v = (await value.data())[0];
      value.dispose();
      for (const g of Object.values(grads)) g.dispose();
      return v;
    };
    const peak: HostPeak = { rss: 0, arrayBuffers: 0 };
    let devicePeak = 0;
    global.gc?.();
    sampleHost(peak);
    const tfDeviceBytes = () => {
      const m = tf.memory() as { numBytes: number; numBytesInGPU?: number };
      return device === 'webgpu' ? (m.numBytesInGPU ?? m.numBytes) : m.numBytes;
    };
    const stop = onTfjsKernels(tf, () => {
      sampleHost(peak);
      devicePeak = Math.max(devicePeak, tfDeviceBytes());
    });
    let loss: number;
    try {
      loss = await step();
    } finally {
      stop();
    }
    const t = await timeSteps(async () => { await step(); }, policy);
    theirs = { ms: t.ms, reps: t.reps, loss, mem: { ...peak, deviceBytes: devicePeak } };
    tx.dispose();
    tr.dispose();
    tnet.dispose();
  }
  return { ours, tfjs: theirs };
}

const WARMUP_ONLY: RepPolicy = { budgetMs: 0, minReps: 0, maxReps: 0, warmupMs: 0 };

async function benchOne(
  tf: Tf, raw: Backend, device: Device, arch: Arch, N: number, S: number, policy: RepPolicy, cap: number, probe: { batch: number; size: number },
): Promise<BackboneRow> {
  let predicted = { ours: 0, tfjs: 0 };
  let probed: Awaited<ReturnType<typeof runPair>> | null = null;
  if (Number.isFinite(cap) && probe.batch * probe.size ** 2 < N * S * S) {
    // A step of each side at a small shape predicts the full one (linear in batch x pixels). The
    // first step at the small shape also compiles the shaders, so where a shape of twice the side
    // still fits below the full one, a second step there (shaders mostly cached) is the predictor.
    probed = await runPair(tf, raw, device, arch, probe.batch, probe.size, WARMUP_ONLY, { ours: true, tfjs: true });
    if (probe.batch * (2 * probe.size) ** 2 < N * S * S) {
      probe = { ...probe, size: 2 * probe.size };
      probed = await runPair(tf, raw, device, arch, probe.batch, probe.size, WARMUP_ONLY, { ours: true, tfjs: true });
    }
    const f = (N * S * S) / (probe.batch * probe.size ** 2);
    predicted = { ours: probed.ours!.ms * f, tfjs: probed.tfjs!.ms * f };
  }
  const sides = { ours: predicted.ours <= cap, tfjs: predicted.tfjs <= cap };
  const full = sides.ours || sides.tfjs ? await runPair(tf, raw, device, arch, N, S, policy, sides) : { ours: null, tfjs: null };
  const pick = (side: 'ours' | 'tfjs') => full[side] ?? { ...probed![side]!, ms: predicted[side], reps: 0 };
  const ours = pick('ours'), theirs = pick('tfjs');
  // The loss check compares both sides at one shape: the full one if both ran it, else the probe.
  const both = full.ours && full.tfjs;
  const check = both ? { o: full.ours!.loss, t: full.tfjs!.loss, shape: `${N}x3x${S}x${S}` } : { o: probed!.ours!.loss, t: probed!.tfjs!.loss, shape: `${probe.batch}x3x${probe.size}x${probe.size}` };
  return {
    arch, device, batch: N, inputSize: S,
    oursMs: ours.ms, tfjsMs: theirs.ms, ratio: theirs.ms / ours.ms, oursReps: ours.reps, tfjsReps: theirs.reps,
    oursMeasured: !!full.ours, tfjsMeasured: !!full.tfjs,
    probe: probed ? { shape: `${probe.batch}x3x${probe.size}x${probe.size}`, oursMs: probed.ours!.ms, tfjsMs: probed.tfjs!.ms } : null,
    oursImagesPerSecond: (N * 1000) / ours.ms, tfjsImagesPerSecond: (N * 1000) / theirs.ms,
    oursLoss: check.o, tfjsLoss: check.t, lossRelDiff: relDiff(check.o, check.t), checkShape: check.shape,
    ours: ours.mem, tfjs: theirs.mem,
  };
}

/** Runs every configuration, prints the tables, returns the rows. */
export async function run(o: BackboneBenchOptions = {}): Promise<BackboneRow[]> {
  const log = o.log ?? console.log;
  const N = o.batch ?? 32;
  const devices = o.devices ?? ['cpu', 'webgpu'];
  const archs = o.archs ?? ['smallnet', 'mobilefacenet'];
  const policy = o.policy ?? BACKBONE_POLICY;
  const sizes: Record<Arch, number> = { ...DEFAULT_INPUT_SIZE, ...o.inputSize };
  log(`backbones: one training step (forward, loss = sum(embedding * R) / N, backward), batch ${N}, ${archs.map((a) => `${a} ${sizes[a]}x${sizes[a]}`).join(', ')}`);
  log(`  repetitions: warm-up steps for 300 ms (the first: loss check and memory peaks, sampled after every kernel), then as many as fit ${policy.budgetMs / 1000} s per side (${policy.minReps}..${policy.maxReps}); median`);
  for (const d of TFJS_DIFFERENCES) log(`  tfjs differs: ${d}`);
  const rows: BackboneRow[] = [];
  for (const device of devices) {
    const tf = await tfjs(device);
    const raw = await ourBackend(device);
    try {
      for (const arch of archs) {
        const skipped = o.skip?.find((k) => k.device === device && k.arch === arch);
        if (skipped) {
          log(`  ${device} ${arch}: not run (${skipped.reason})`);
          continue;
        }
        const row = await benchOne(tf, raw, device, arch, N, sizes[arch], policy, o.maxStepMs ?? Infinity, o.probe ?? { batch: 2, size: 16 });
        rows.push(row);
        const probe = row.probe ? ` [probe ${row.probe.shape}: ours ${fmt(row.probe.oursMs)} ms, tfjs ${fmt(row.probe.tfjsMs)} ms]` : '';
        log(`  ${device} ${arch}: ours ${fmt(row.oursMs)} ms (${timed(row.oursReps, row.oursMeasured)}), tfjs ${fmt(row.tfjsMs)} ms (${timed(row.tfjsReps, row.tfjsMeasured)}), ` +
          `tfjs/ours ${fmt(row.ratio, 2)}; loss at ${row.checkShape} ${row.oursLoss.toPrecision(7)} vs ${row.tfjsLoss.toPrecision(7)} (rel diff ${row.lossRelDiff.toExponential(1)})${probe}`);
      }
    } finally {
      raw.dispose();
    }
  }
  printBackboneTables(rows, log);
  return rows;
}

export function printBackboneTables(rows: BackboneRow[], log: Log): void {
  log('');
  printTable(log, ['device', 'network', 'input', 'ours ms/step', 'tfjs ms/step', 'tfjs/ours', 'ours img/s', 'tfjs img/s', 'steps (ours / tfjs)', 'probe (ours / tfjs ms)', 'loss check at', 'loss ours', 'loss tfjs', 'rel diff'],
    rows.map((r) => [r.device, r.arch, `${r.batch}x3x${r.inputSize}x${r.inputSize}`, fmt(r.oursMs), fmt(r.tfjsMs), fmt(r.ratio, 2),
      fmt(r.oursImagesPerSecond, 2), fmt(r.tfjsImagesPerSecond, 2), `${timed(r.oursReps, r.oursMeasured)} / ${timed(r.tfjsReps, r.tfjsMeasured)}`,
      r.probe ? `${r.probe.shape}: ${fmt(r.probe.oursMs)} / ${fmt(r.probe.tfjsMs)}` : '-', r.checkShape,
      r.oursLoss.toPrecision(6), r.tfjsLoss.toPrecision(6), r.lossRelDiff.toExponential(1)]));
  log('');
  log('Peak memory over one step (MiB), sampled after every kernel; device = ours bytesLive / tfjs numBytesInGPU (webgpu) or tensor bytes (cpu); (probe) = at the probe shape:');
  printTable(log, ['device', 'network', 'ours rss', 'ours arrayBuffers', 'ours device', 'tfjs rss', 'tfjs arrayBuffers', 'tfjs device'],
    rows.map((r) => {
      const o = r.oursMeasured ? '' : ' (probe)', t = r.tfjsMeasured ? '' : ' (probe)';
      return [r.device, r.arch, mib(r.ours.rss) + o, mib(r.ours.arrayBuffers) + o, mib(r.ours.deviceBytes) + o, mib(r.tfjs.rss) + t, mib(r.tfjs.arrayBuffers) + t, mib(r.tfjs.deviceBytes) + t];
    }));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run();
  process.exit(0);
}
