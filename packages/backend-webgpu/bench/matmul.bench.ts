/**
 * Matmul timing of this backend against @tensorflow/tfjs-backend-webgpu on the same Dawn adapter,
 * in one process. Run: node --conditions=@fr/source --import tsx bench/matmul.bench.ts
 * (with VK_ICD_FILENAMES pointing at SwiftShader on a machine without a GPU).
 */
import { pathToFileURL } from 'node:url';
import { createRng } from '@fr/core';
import { createNodeWebGpuBackend, nodeGpu } from '../src/node.js';

export interface BenchRow {
  shape: string;
  m: number;
  n: number;
  k: number;
  oursMs: number;
  tfjsMs: number;
  /** tfjs time / our time: above 1 means this backend is faster. */
  ratio: number;
  oursGflops: number;
}

const SHAPES: [string, number, number, number, boolean][] = [
  // [label, m, n, k, transB]: B x C classifier (cos = x W^T) and square products.
  ['classifier 128x512 @ (10000x512)^T', 128, 10000, 512, true],
  ['square 256', 256, 256, 256, false],
  ['square 512', 512, 512, 512, false],
  ['square 1024', 1024, 1024, 1024, false],
];

function rand(n: number, seed: number): Float32Array {
  const r = createRng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
}

/** Median of `reps` timings after `warmup` runs; each timing waits for the queue. */
async function time(fn: () => Promise<void>, warmup: number, reps: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

export async function run(options: { reps?: number; shapes?: typeof SHAPES } = {}): Promise<BenchRow[]> {
  const reps = options.reps ?? 3;
  const backend = await createNodeWebGpuBackend({ destroyDeviceOnDispose: false });
  // tfjs on the same Dawn instance (so the same adapter) through navigator.gpu.
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: nodeGpu() }, configurable: true, writable: true });
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  await tf.setBackend('webgpu');
  await tf.ready();
  const rows: BenchRow[] = [];
  for (const [shape, m, n, k, transB] of options.shapes ?? SHAPES) {
    const a = rand(m * k, 1), b = rand(k * n, 2);
    const ga = backend.alloc(m * k, 'float32'), gb = backend.alloc(k * n, 'float32'), go = backend.alloc(m * n, 'float32');
    backend.write(ga, a);
    backend.write(gb, b);
    const p = { m, n, k, transA: false, transB, alpha: 1, beta: 0 };
    const oursMs = await time(async () => {
      backend.kernels.matmul(ga, gb, go, p);
      await backend.sync();
    }, 1, reps);
    for (const x of [ga, gb, go]) backend.free(x);

    const ta = tf.tensor2d(a, [m, k]);
    const tb = tf.tensor2d(b, transB ? [n, k] : [k, n]);
    const tfjsMs = await time(async () => {
      const c = tf.matMul(ta, tb, false, transB);
      await c.data(); // tfjs has no queue sync: wait through a 4-byte-per-element readback...
      c.dispose();
    }, 1, reps);
    // ...so subtract the readback alone, measured on the same output size.
    const readMs = await time(async () => {
      const c = tf.fill([m, n], 1);
      await c.data();
      c.dispose();
    }, 1, reps);
    ta.dispose();
    tb.dispose();
    const tfjsNet = Math.max(tfjsMs - readMs, 1e-3);
    rows.push({ shape, m, n, k, oursMs, tfjsMs: tfjsNet, ratio: tfjsNet / oursMs, oursGflops: (2 * m * n * k) / (oursMs * 1e6) });
  }
  backend.dispose();
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await run();
  console.log('shape'.padEnd(38), 'ours ms'.padStart(10), 'tfjs ms'.padStart(10), 'tfjs/ours'.padStart(10), 'ours GFLOP/s'.padStart(13));
  for (const r of rows) {
    console.log(r.shape.padEnd(38), r.oursMs.toFixed(1).padStart(10), r.tfjsMs.toFixed(1).padStart(10), r.ratio.toFixed(2).padStart(10), r.oursGflops.toFixed(2).padStart(13));
  }
  process.exit(0);
}
