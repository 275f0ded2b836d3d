/**
 * Head benchmark on the CPU backend: forward + backward of the cosine-margin head at B = 128,
 * D = 512 for C = 100,000 and 1,000,000: full head vs Partial FC at rate 0.1, and 2 shards vs 1.
 * Peak memory is sampled after every kernel (the kernels block the event loop, so a timer would
 * miss the peaks). Run: node --conditions=@fr/source --import tsx packages/scale/bench/head.bench.ts
 *
 * Shards are CPU backends in one process. In-thread shards run one after the other, so their K = 2
 * shows the cost of the second kernel pass and the all-reduce; with `workers`, shard 1 runs on a
 * worker thread (@fr/backend-cpu/node) while the calling thread runs shard 0.
 */
import { createCpuBackend, createWorkerCpuBackend } from '@fr/backend-cpu/node';
import { createRng, scaledTransform, type Backend, type KernelTable } from '@fr/core';
import { pathToFileURL } from 'node:url';
import { createShardedHead, formatBytes, planMemory } from '../src/index.js';

const B = 128;
const D = 512;

interface Peak {
  rss: number;
  arrayBuffers: number;
}

/** A CPU backend whose kernels sample process memory after they run. */
function sampledBackend(peak: Peak): Backend {
  const cpu = createCpuBackend({ maxBufferSize: 2 ** 32 });
  const kernels = Object.fromEntries(
    Object.entries(cpu.kernels).map(([name, fn]) => [name, (...args: unknown[]) => {
      const r = (fn as (...a: unknown[]) => unknown)(...args);
      sample(peak);
      return r;
    }]),
  ) as unknown as KernelTable<unknown>;
  return { ...cpu, kernels } as Backend;
}

function sample(peak: Peak): void {
  const m = process.memoryUsage();
  peak.rss = Math.max(peak.rss, m.rss);
  peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
}

export interface BenchRow {
  classes: number;
  variant: string;
  shards: number;
  rate: number;
  /** Seconds per step (forward + backward). */
  seconds: number;
  peakRss: number;
  peakArrayBuffers: number;
  /** How the figure was obtained. */
  note: string;
}

function embeddings(seed: number): Float32Array {
  const rng = createRng(seed);
  const x = new Float32Array(B * D);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  return x;
}

function labels(seed: number, classes: number): Int32Array {
  const rng = createRng(seed);
  return Int32Array.from({ length: B }, () => rng.int(classes));
}

/** Times `steps` steps of one configuration after a warm-up step; returns seconds per step. */
async function measure(classes: number, shards: number, rate: number, steps: number, workers = false): Promise<Omit<BenchRow, 'variant' | 'note'>> {
  global.gc?.();
  const peak: Peak = { rss: 0, arrayBuffers: 0 };
  sample(peak);
  // With workers, shards 1..K-1 run on worker threads (their memory is this process's too).
  const backends = Array.from({ length: shards }, (_, i) => (workers && i > 0 ? createWorkerCpuBackend({ maxBufferSize: 2 ** 32 }) : sampledBackend(peak)));
  const head = createShardedHead({
    name: 'bench', backends, numClasses: classes, embeddingDim: D, rng: createRng(1),
    transform: () => scaledTransform(64), reducer: 'softmax-ce', sampleRate: rate, sampleSeed: 1,
  });
  const x = embeddings(2);
  const zero = () => {
    for (const p of head.parameters) {
      p.tensor.grad?.dispose();
      p.tensor.grad = null;
    }
    head.clearSampled();
  };
  await head.forwardBackward(x, labels(0, classes));
  zero();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    await head.forwardBackward(x, labels(s + 1, classes));
    zero();
  }
  const seconds = (performance.now() - t0) / 1000 / steps;
  head.dispose();
  for (const b of backends) b.dispose();
  return { classes, shards, rate, seconds, peakRss: peak.rss, peakArrayBuffers: peak.arrayBuffers };
}

export interface RunOptions {
  /** Steps timed per configuration (after one warm-up step). */
  steps?: number;
  /** Longest measured 1M full-head step allowed before extrapolating from row blocks, seconds. */
  fullBudgetSeconds?: number;
  log?: (line: string) => void;
}

/** Runs every configuration and prints the table; returns the rows. */
export async function run(o: RunOptions = {}): Promise<BenchRow[]> {
  const steps = o.steps ?? 2;
  const log = o.log ?? console.log;
  const rows: BenchRow[] = [];
  const add = (variant: string, r: Omit<BenchRow, 'variant' | 'note'>, note = 'measured') => {
    rows.push({ ...r, variant, note });
    log(`  ${variant.padEnd(32)} C=${r.classes.toLocaleString('en-US').padStart(9)}  ${r.seconds.toFixed(2).padStart(7)} s/step  rss ${formatBytes(r.peakRss)}  (${note})`);
  };
  log(`@fr/scale head benchmark: CPU backend, B=${B}, D=${D}, softmax-ce, forward + backward, ${steps} timed steps after a warm-up`);
  const full100k = await measure(100_000, 1, 1, steps);
  add('full, K=1', full100k);
  add('Partial FC 0.1, K=1', await measure(100_000, 1, 0.1, steps));
  add('full, K=2', await measure(100_000, 2, 1, steps));
  add('full, K=2 on 2 threads', await measure(100_000, 2, 1, steps, true));

  // 1M: the full head is about 10x the 100k one; run it only if that fits the budget.
  const budget = o.fullBudgetSeconds ?? 180;
  const predicted = full100k.seconds * 10;
  if (predicted <= budget) {
    add('full, K=1', await measure(1_000_000, 1, 1, 1));
  } else {
    // Row blocks: the head is linear in C, so 10 blocks of 100k classes make the 1M step. Time a
    // fixed number of blocks (the 100k steps above and two more) and extrapolate.
    const blocks = [full100k.seconds, (await measure(100_000, 1, 1, 2)).seconds];
    const perBlock = blocks.reduce((a, b) => a + b, 0) / blocks.length;
    const plan = planMemory({ numClasses: 1_000_000, embeddingDim: D, batch: B, backboneParams: 0, activationBytes: 0, optimizer: 'sgd' });
    const planned = plan.devices[0].classWeights + plan.devices[0].lossHead + plan.devices[0].headWorkspace;
    add('full, K=1', { classes: 1_000_000, shards: 1, rate: 1, seconds: perBlock * 10, peakRss: planned, peakArrayBuffers: planned },
      `extrapolated: predicted ${predicted.toFixed(0)} s > ${budget} s, 10 x ${perBlock.toFixed(2)} s per 100k-row block; memory planned, not measured`);
  }
  add('Partial FC 0.1, K=1', await measure(1_000_000, 1, 0.1, 1));
  add('Partial FC 0.1, K=2', await measure(1_000_000, 2, 0.1, 1));
  add('Partial FC 0.1, K=2 on 2 threads', await measure(1_000_000, 2, 0.1, 1, true));

  log('');
  log('| C | variant | K | rate | s/step | vs full K=1 | peak rss | peak arrayBuffers | note |');
  log('|---:|---|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const ref = rows.find((x) => x.classes === r.classes && x.variant === 'full, K=1')!;
    log(`| ${r.classes.toLocaleString('en-US')} | ${r.variant} | ${r.shards} | ${r.rate} | ${r.seconds.toFixed(2)} | ${(r.seconds / ref.seconds).toFixed(2)}x | ${formatBytes(r.peakRss)} | ${formatBytes(r.peakArrayBuffers)} | ${r.note} |`);
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run({ steps: Number(process.env.BENCH_STEPS ?? 2) });
}
