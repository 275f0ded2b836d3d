/**
 * The PyTorch peer inside the cpu bench: what can run is decided once (and a line printed for what
 * cannot); each workload then returns its checked result, or null when it was not run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { arcface } from '@fr/arcface';
import { parseLossParams } from '@fr/core';
import { fmt, printTable, relDiff, type Log } from './common.js';
import type { HeadRow, Problem } from './head.bench.js';
import {
  DEBIAN_PYTHON, describeTorchEnv, logAvailability, torchAvailability, torchHead, torchMatmul, torchMobileFaceNet, TORCH_STEPS,
  type TorchAvailability, type TorchBackboneResult, type TorchEnvInfo, type TorchHeadResult, type TorchMatmulResult,
  type TorchPeerOptions, type TorchWorkload,
} from './torch-peer.js';

export type { TorchPeerOptions } from './torch-peer.js';

/** Embedding width of insightface's get_mbf as the bench builds it (and of our MobileFaceNet). */
const MOBILEFACENET_EMBEDDING = 512;
/** A head loss further than this from ours means the two sides do not compute the same step. */
const HEAD_LOSS_TOLERANCE = 1e-3;

export interface TorchPeer {
  availability: TorchAvailability;
  /** PyTorch's threads (for table headers). */
  threads: number;
  headSteps: string;
  mobilefacenetSteps: string;
  matmul(shapes: { name: string; m: number; n: number; k: number; transB: boolean }[]): Promise<TorchMatmulResult | null>;
  head(shape: { batch: number; dim: number; classes: number; s: number; m: number }, dataDir: string): Promise<TorchHeadResult | null>;
  mobilefacenet(batches: number[], size: number): Promise<TorchBackboneResult | null>;
}

/**
 * Decides what the peer can run and prints it. `undefined`: Debian's python3 without an
 * insightface checkout; `null`: the caller asked for no peer (said on one line).
 */
export async function torchPeerStart(options: TorchPeerOptions | null | undefined, log: Log): Promise<TorchPeer> {
  const o = options === undefined ? { python: DEBIAN_PYTHON, insightface: null } : options;
  const availability: TorchAvailability = o === null
    ? { workloads: [], torchVersion: null, notRun: 'PyTorch peer not run (head, MobileFaceNet, matmul rows): disabled by the caller (torch: null)' }
    : torchAvailability(o);
  if (o === null) log(availability.notRun!);
  else logAvailability(availability, o, log);
  // A workload the options allow runs; PyTorch's environment is printed with the first result.
  let envLogged = false;
  const run = async <R extends { env: TorchEnvInfo }>(w: TorchWorkload, call: (o: TorchPeerOptions) => Promise<R>): Promise<R | null> => {
    if (o === null || !availability.workloads.includes(w)) return null;
    const r = await call(o);
    if (!envLogged) log(`  ${describeTorchEnv(r.env)}`);
    envLogged = true;
    return r;
  };
  const counts = (c: { warmups: number; steps: number }) => `${c.steps} steps after ${c.warmups} warm-ups`;
  return {
    availability,
    threads: o?.threads ?? availableParallelism(),
    headSteps: counts(o?.head ?? TORCH_STEPS.head),
    mobilefacenetSteps: counts(o?.mobilefacenet ?? TORCH_STEPS.mobilefacenet),
    matmul: (shapes) => run('matmul', (opts) => torchMatmul(opts, shapes)),
    head: (shape, dataDir) => run('head', (opts) => torchHead(opts, shape, dataDir)),
    mobilefacenet: (batches, size) => run('mobilefacenet', (opts) => torchMobileFaceNet(opts, batches, size, MOBILEFACENET_EMBEDDING)),
  };
}

/**
 * PyTorch's ArcFace head step on the problem our row was measured on (x, W, the first label batch,
 * our default s and m), printed beside our wasm step with both losses. A loss that differs is
 * marked MISMATCH: the two sides then do not time the same step.
 */
export async function arcfaceHeadPeer(peer: TorchPeer, ours: HeadRow, p: Problem, threads: number, log: Log): Promise<TorchHeadResult | null> {
  const { s, m } = parseLossParams(arcface, {});
  const dir = mkdtempSync(join(tmpdir(), 'fr-torch-head-'));
  let r: TorchHeadResult | null;
  try {
    const bytes = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    writeFileSync(join(dir, 'x.f32'), bytes(p.x));
    writeFileSync(join(dir, 'w.f32'), bytes(p.w));
    writeFileSync(join(dir, 'labels.i32'), bytes(p.labels[0]));
    r = await peer.head({ batch: p.B, dim: p.D, classes: p.C, s, m }, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const diff = r ? relDiff(ours.oursLoss, r.loss) : NaN;
  log(`ArcFace head B${p.B} D${p.D} C${p.C}, forward + backward, median ms (PyTorch: insightface's normalised linear, clamp, margin on the target under no_grad, s=${s}, m=${m}, cross-entropy; ${peer.headSteps}; same x, W, labels):`);
  printTable(log, ['step', `wasm ${threads} threads ms`, `PyTorch ${peer.threads} threads ms`, 'wasm / PyTorch', 'loss wasm / PyTorch'], [[
    'ArcFace head', fmt(ours.oursMs), r ? fmt(r.ms) : 'not run', r ? fmt(ours.oursMs / r.ms, 2) : '-',
    r ? `${ours.oursLoss.toFixed(4)} / ${r.loss.toFixed(4)}${diff > HEAD_LOSS_TOLERANCE ? ` (rel diff ${diff.toExponential(1)}: MISMATCH)` : ''}` : `${ours.oursLoss.toFixed(4)} / -`,
  ]]);
  return r;
}
