/**
 * Loss-head benchmark: one training step of the cosine-margin head (cos = normalize(x)
 * normalize(W)^T, margin transform, reduction, and the backward matmuls to the embeddings and the
 * class weights through both L2 normalisations) for ArcFace and SphereFace2, this project's
 * backends against the same head composed from TensorFlow.js ops on the same device.
 *
 * Run alone: bash tooling/test-env.sh node --conditions=@fr/source --import tsx apps/bench/src/head.bench.ts
 */
import { pathToFileURL } from 'node:url';
import { arcface } from '@fr/arcface';
import { initialBias, sphereface2 } from '@fr/sphereface2';
import { backward, createRng, parseLossParams, tensor, tidy, type Backend, type Loss, type LossHead, type Tensor } from '@fr/core';
import {
  emptyTraffic, fmt, hookedBackend, maxRelError, onTfjsKernels, ourBackend, ourTrafficHook, printTable, relDiff, tfjs,
  timeSteps, type Device, type Log, type RepPolicy, type Tf, type Traffic,
} from './common.js';

export type HeadLoss = 'arcface' | 'sphereface2';

export interface HeadRow {
  loss: HeadLoss;
  device: Device;
  batch: number;
  dim: number;
  classes: number;
  oursMs: number;
  tfjsMs: number;
  /** tfjs time / our time: above 1 means ours is faster. */
  ratio: number;
  /** Timed steps after the warm-up; 0 with `measured` true: the warm-up step is the figure. */
  oursReps: number;
  tfjsReps: number;
  /** false: the time is extrapolated linearly in C from the previous size, not measured. */
  oursMeasured: boolean;
  tfjsMeasured: boolean;
  /** Loss of the first step on each side, same inputs and weights. */
  oursLoss: number;
  tfjsLoss: number;
  lossRelDiff: number;
  /** max |d loss/dx (ours) - d loss/dx (tfjs)| / max |d loss/dx (tfjs)|. */
  gradXRelError: number;
  /** Kernel traffic of one step (each kernel's inputs read once, outputs written once). */
  ours: Traffic;
  tfjs: Traffic;
  /** Host transfers of one of our steps (backend.stats() deltas): labels up, loss down. */
  oursHostBytes: number;
  /** 4 (B C + C D + B D): the cosine matrix, the weights and the embeddings, once each. */
  minimumBytes: number;
}

export interface HeadBenchOptions {
  devices?: Device[];
  losses?: HeadLoss[];
  classes?: number[];
  batch?: number;
  dim?: number;
  /** Repetition policy per side of a configuration; `large` applies from `largeFrom` classes. */
  policy?: RepPolicy;
  large?: RepPolicy;
  largeFrom?: number;
  /** A side predicted slower than this per step (linearly in C from the last measured size) is extrapolated. */
  maxStepMs?: number;
  log?: Log;
}

export const DEFAULT_POLICY: RepPolicy = { budgetMs: 8_000, minReps: 2, maxReps: 10 };
export const LARGE_POLICY: RepPolicy = { budgetMs: 30_000, minReps: 1, maxReps: 3 };

const LOSSES: Record<HeadLoss, Loss<any>> = { arcface, sphereface2 };

export interface Problem {
  B: number;
  D: number;
  C: number;
  x: Float32Array;
  w: Float32Array;
  labels: Int32Array[];
}

export function problem(B: number, D: number, C: number): Problem {
  const rng = createRng(7);
  const x = new Float32Array(B * D);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const w = new Float32Array(C * D);
  for (let i = 0; i < w.length; i++) w[i] = 0.01 * rng.normal();
  // A few label batches, so that a step uploads new labels as training does.
  const labels = Array.from({ length: 4 }, () => Int32Array.from({ length: B }, () => rng.int(C)));
  return { B, D, C, x, w, labels };
}

// ---------------------------------------------------------------------------------------------
// Ours

interface OurSide {
  step(i: number): Promise<number>;
  gradX(): Promise<Float32Array>;
  bias: number | null;
  dispose(): void;
}

async function ourSide(backend: Backend, lossName: HeadLoss, p: Problem): Promise<OurSide> {
  const loss = LOSSES[lossName];
  const params = parseLossParams(loss, {});
  const head: LossHead = loss.createHead({ backend, numClasses: p.C, embeddingDim: p.D, params, rng: createRng(1) });
  // The same weights on both sides (the head drew its own; overwrite them).
  backend.write(head.parameters[0].tensor.buffer(), p.w);
  const biasT = head.parameters[1]?.tensor ?? null;
  const bias = biasT ? await biasT.item() : null;
  const x = tensor(backend, p.x, [p.B, p.D], { requiresGrad: true, name: 'x' });
  let lastGradX: Float32Array | null = null;
  const clear = () => {
    for (const t of [x, ...head.parameters.map((q) => q.tensor)]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  return {
    bias,
    async step(i) {
      clear();
      const l = tidy(() => {
        const out = head.forward(x, p.labels[i % p.labels.length]);
        backward(out);
        return out;
      });
      // Reading the loss waits for every kernel enqueued before it, the backward ones included.
      const v = await l.item();
      l.dispose();
      return v;
    },
    async gradX() {
      lastGradX = (await x.grad!.data()) as Float32Array;
      return lastGradX;
    },
    dispose() {
      clear();
      x.dispose();
      head.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// TensorFlow.js: the same head from tfjs ops, with the same gradient rules.

/** F.normalize(x, dim=1): x / max(|x|, eps). */
function l2n(tf: Tf, x: import('@tensorflow/tfjs-core').Tensor2D): import('@tensorflow/tfjs-core').Tensor2D {
  return tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12));
}

function tfjsLoss(
  tf: Tf, lossName: HeadLoss, xv: import('@tensorflow/tfjs-core').Variable, wv: import('@tensorflow/tfjs-core').Variable,
  bv: import('@tensorflow/tfjs-core').Variable | null, y: import('@tensorflow/tfjs-core').Tensor1D, C: number,
): import('@tensorflow/tfjs-core').Scalar {
  type T = import('@tensorflow/tfjs-core').Tensor;
  const B = xv.shape[0];
  const cos = tf.matMul(l2n(tf, xv as never), l2n(tf, wv as never), false, true);
  // int32, then cast: tfjs-backend-wasm 4.22's OneHot ignores a float32 dtype and writes int32 bits
  // (1 reads as 1.4e-45), which made its loss 1.8e-44.
  const oneHot = tf.cast(tf.oneHot(y, C), 'float32');
  // The margin is applied without gradient (opensphere, insightface): d logit / d cos = slope.
  const detached = (f: (c: T) => T, slope: number) =>
    tf.customGrad(((c: T) => ({ value: f(c), gradFunc: (dy: T) => tf.mul(dy, slope) })) as never) as (c: T) => T;
  if (lossName === 'arcface') {
    const p = parseLossParams(arcface, {});
    // opensphere arcface.py: theta = acos(clamp(cos)); theta[y] += m; clamp; logits = s cos(theta).
    const logits = detached((c) => {
      const theta = tf.acos(tf.clipByValue(c, -1 + 1e-5, 1 - 1e-5));
      return tf.mul(tf.cos(tf.clipByValue(tf.add(theta, tf.mul(oneHot, p.m)), 1e-5, 3.14159)), p.s);
    }, p.s)(cos);
    return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as import('@tensorflow/tfjs-core').Scalar;
  }
  const p = parseLossParams(sphereface2, {});
  if (p.margin !== 'C') throw new Error('bench: the tfjs SphereFace2 head implements the default C margin only');
  // opensphere sphereface2.py, C margin: r (g(cos) -/+ m) + b, one-vs-all softplus losses.
  const logits = detached((c) => {
    const g = tf.sub(tf.mul(tf.pow(tf.mul(tf.add(c, 1), 0.5), p.t), 2), 1);
    return tf.mul(tf.add(g, tf.mul(tf.sub(1, tf.mul(oneHot, 2)), p.m)), p.r);
  }, p.r)(cos);
  const z = tf.add(logits, bv!);
  const pos = tf.mul(tf.mul(oneHot, tf.softplus(tf.neg(z))), p.lambda);
  const neg = tf.mul(tf.mul(tf.sub(1, oneHot), tf.softplus(z)), 1 - p.lambda);
  return tf.mul(tf.sum(tf.add(pos, neg)), p.lw / (p.r * B)) as import('@tensorflow/tfjs-core').Scalar;
}

interface TfjsSide {
  step(i: number): Promise<number>;
  gradX(): Promise<Float32Array>;
  dispose(): void;
}

function tfjsSide(tf: Tf, lossName: HeadLoss, p: Problem, bias: number | null): TfjsSide {
  const xv = tf.variable(tf.tensor2d(p.x, [p.B, p.D]));
  const wv = tf.variable(tf.tensor2d(p.w, [p.C, p.D]));
  const bv = bias === null ? null : tf.variable(tf.scalar(bias));
  const vars = bv ? [xv, wv, bv] : [xv, wv];
  let gx: import('@tensorflow/tfjs-core').Tensor | null = null;
  return {
    async step(i) {
      gx?.dispose();
      const { value, grads } = tf.variableGrads(() => {
        const y = tf.tensor1d(p.labels[i % p.labels.length], 'int32');
        return tfjsLoss(tf, lossName, xv, wv, bv, y, p.C);
      }, vars);
      // tfjs has no queue sync; reading the loss submits and waits for everything recorded so far.
      const v = (await value.data())[0];
      value.dispose();
      gx = grads[xv.name];
      for (const [k, g] of Object.entries(grads)) if (k !== xv.name) g.dispose();
      return v;
    },
    async gradX() {
      return (await gx!.data()) as Float32Array;
    },
    dispose() {
      gx?.dispose();
      for (const v of vars) v.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------

/** Runs every configuration, prints the table, returns the rows. */
export async function run(o: HeadBenchOptions = {}): Promise<HeadRow[]> {
  const log = o.log ?? console.log;
  const B = o.batch ?? 128, D = o.dim ?? 512;
  const devices = o.devices ?? ['webgpu', 'cpu'];
  const losses = o.losses ?? ['arcface', 'sphereface2'];
  const classesList = o.classes ?? [10_000, 100_000];
  const policy = o.policy ?? DEFAULT_POLICY;
  const large = o.large ?? LARGE_POLICY;
  const largeFrom = o.largeFrom ?? 50_000;
  const maxStepMs = o.maxStepMs ?? Infinity;
  const last = new Map<string, { classes: number; oursMs: number; tfjsMs: number }>();
  log(`loss head: B=${B}, D=${D}, C in {${classesList.join(', ')}}, forward + backward (to x and W), ${devices.join(' and ')}`);
  log(`  repetitions: warm-up steps for 300 ms (the first also the loss check), then as many as fit ${policy.budgetMs / 1000} s per side ` +
    `(${policy.minReps}..${policy.maxReps}); from C=${largeFrom}: ${large.budgetMs / 1000} s (${large.minReps}..${large.maxReps}); median`);
  const rows: HeadRow[] = [];
  for (const device of devices) {
    const tf = await tfjs(device);
    const raw = await ourBackend(device);
    const { backend, hook } = hookedBackend(raw);
    try {
      for (const C of classesList) {
        const p = problem(B, D, C);
        for (const lossName of losses) {
          const pol = C >= largeFrom ? large : policy;
          // A side whose step is predicted over the cap (linear in C from the last size measured)
          // is extrapolated, not run.
          const prev = last.get(`${device}/${lossName}`);
          const predict = (ms: number | undefined) => (prev && ms !== undefined ? (ms * C) / prev.classes : 0);
          const runOurs = predict(prev?.oursMs) <= maxStepMs;
          const runTfjs = predict(prev?.tfjsMs) <= maxStepMs;

          const traffic = emptyTraffic();
          let oursLoss = NaN, oursHostBytes = NaN, bias: number | null = null;
          let oursGradX: Float32Array | null = null;
          let oursT = { ms: predict(prev?.oursMs), reps: 0, warmupMs: NaN };
          if (runOurs) {
            const ours = await ourSide(backend, lossName, p);
            // Traffic of one step, counted from the kernel sequence; host transfers from stats().
            hook.current = ourTrafficHook(traffic);
            const s0 = raw.stats();
            oursLoss = await ours.step(0);
            const s1 = raw.stats();
            hook.current = null;
            oursHostBytes = s1.bytesRead - s0.bytesRead + s1.bytesWritten - s0.bytesWritten;
            oursGradX = await ours.gradX();
            oursT = await timeSteps(async () => { await ours.step(1); }, pol);
            bias = ours.bias;
            ours.dispose();
          } else if (lossName === 'sphereface2') {
            bias = initialBias(parseLossParams(sphereface2, {}), C);
          }

          const tfTraffic = emptyTraffic();
          let tfjsLossValue = NaN;
          let tfGradX: Float32Array | null = null;
          let tfT = { ms: predict(prev?.tfjsMs), reps: 0, warmupMs: NaN };
          if (runTfjs) {
            const theirs = tfjsSide(tf, lossName, p, bias);
            const stop = onTfjsKernels(tf, (_name, r, w) => {
              tfTraffic.kernels++;
              tfTraffic.read += r;
              tfTraffic.written += w;
            });
            try {
              tfjsLossValue = await theirs.step(0);
            } finally {
              stop();
            }
            tfGradX = await theirs.gradX();
            tfT = await timeSteps(async () => { await theirs.step(1); }, pol);
            theirs.dispose();
          }

          const row: HeadRow = {
            loss: lossName, device, batch: B, dim: D, classes: C,
            oursMs: oursT.ms, tfjsMs: tfT.ms, ratio: tfT.ms / oursT.ms, oursReps: oursT.reps, tfjsReps: tfT.reps,
            oursMeasured: runOurs, tfjsMeasured: runTfjs,
            oursLoss, tfjsLoss: tfjsLossValue, lossRelDiff: relDiff(oursLoss, tfjsLossValue),
            gradXRelError: oursGradX && tfGradX ? maxRelError(oursGradX, tfGradX) : NaN,
            ours: traffic, tfjs: tfTraffic,
            oursHostBytes,
            minimumBytes: 4 * (B * C + C * D + B * D),
          };
          if (runOurs && runTfjs) last.set(`${device}/${lossName}`, { classes: C, oursMs: oursT.ms, tfjsMs: tfT.ms });
          rows.push(row);
          log(`  ${device} ${lossName} C=${C}: ours ${fmt(row.oursMs)} ms (${timed(row.oursReps, row.oursMeasured)}), tfjs ${fmt(row.tfjsMs)} ms ` +
            `(${timed(row.tfjsReps, row.tfjsMeasured)}), tfjs/ours ${fmt(row.ratio, 2)}; loss ${row.oursLoss.toPrecision(7)} vs ${row.tfjsLoss.toPrecision(7)} ` +
            `(rel diff ${row.lossRelDiff.toExponential(1)}), dx rel err ${row.gradXRelError.toExponential(1)}${disagree(row) ? ': MISMATCH, the two sides do not compute the same step' : ''}`);
        }
      }
    } finally {
      raw.dispose();
    }
  }
  printHeadTables(rows, log);
  return rows;
}

/** Most relative difference of the loss, and of d loss / dx, for ours and tfjs to count as the same step. */
export const HEAD_AGREEMENT = { loss: 1e-3, gradX: 1e-2 };

/** Whether the two sides' losses or input gradients differ beyond HEAD_AGREEMENT (NaN: not compared). */
export function disagree(r: HeadRow): boolean {
  return r.lossRelDiff > HEAD_AGREEMENT.loss || r.gradXRelError > HEAD_AGREEMENT.gradX;
}

/** How a time was obtained, for the tables. */
export function timed(reps: number, measured: boolean): string {
  if (!measured) return 'extrapolated';
  return reps === 0 ? 'warm-up step only' : `${reps} timed`;
}

export function printHeadTables(rows: HeadRow[], log: Log): void {
  const mb = (b: number) => fmt(b / 1e6, 0);
  log('');
  printTable(log, ['device', 'loss', 'C', 'ours ms/step', 'tfjs ms/step', 'tfjs/ours', 'steps (ours / tfjs)', 'loss ours', 'loss tfjs', 'rel diff', 'dx rel err'],
    rows.map((r) => [r.device, r.loss, r.classes, fmt(r.oursMs), fmt(r.tfjsMs), fmt(r.ratio, 2), `${timed(r.oursReps, r.oursMeasured)} / ${timed(r.tfjsReps, r.tfjsMeasured)}`,
      r.oursLoss.toPrecision(6), r.tfjsLoss.toPrecision(6), `${r.lossRelDiff.toExponential(1)}${disagree(r) ? ' MISMATCH' : ''}`, r.gradXRelError.toExponential(1)]));
  log('');
  log('Kernel traffic per step (MB; each kernel reads its inputs and writes its outputs once), against the minimum 4 (BC + CD + BD):');
  printTable(log, ['device', 'loss', 'C', 'minimum MB', 'ours read', 'ours written', 'ours x min', 'ours kernels', 'tfjs read', 'tfjs written', 'tfjs x min', 'tfjs kernels', 'ours host bytes'],
    rows.filter((r) => r.oursMeasured && r.tfjsMeasured).map((r) => [r.device, r.loss, r.classes, mb(r.minimumBytes), mb(r.ours.read), mb(r.ours.written),
      fmt((r.ours.read + r.ours.written) / r.minimumBytes, 1), r.ours.kernels, mb(r.tfjs.read), mb(r.tfjs.written),
      fmt((r.tfjs.read + r.tfjs.written) / r.minimumBytes, 1), r.tfjs.kernels, r.oursHostBytes]));
  const uncounted = [...new Set(rows.flatMap((r) => r.ours.uncounted))];
  if (uncounted.length) log(`  (our kernels without a traffic rule, counted as 0: ${uncounted.join(', ')})`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run();
  process.exit(0);
}
