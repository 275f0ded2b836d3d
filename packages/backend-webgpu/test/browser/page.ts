/**
 * Runs in Chromium: creates the backend on navigator.gpu and checks a subset of kernels against
 * the CPU backend in the page. The test reads `window.frResults`.
 */
import { createCpuBackend } from '@fr/backend-cpu';
import { createRng, scaledTransform, type Backend, type KernelTable } from '@fr/core';
import { requestWebGpuBackend } from '../../src/index.js';

interface CheckResult { name: string; maxError: number; allowed: number }

function rand(seed: number, n: number): Float32Array {
  const r = createRng(seed);
  return Float32Array.from({ length: n }, () => r.uniform() * 2 - 1);
}

async function runOn<B>(backend: Backend<B>, inputs: Record<string, Float32Array | Int32Array>, outputs: string[], call: (k: KernelTable<B>, b: Record<string, B>) => void) {
  const bufs: Record<string, B> = {};
  for (const [n, d] of Object.entries(inputs)) {
    bufs[n] = backend.alloc(d.length, d instanceof Int32Array ? 'int32' : 'float32');
    backend.write(bufs[n], d);
  }
  call(backend.kernels, bufs);
  const res: Record<string, Float32Array | Int32Array> = {};
  for (const o of outputs) res[o] = await backend.read(bufs[o], 'float32', inputs[o].length);
  return res;
}

async function main() {
  const gpu = await requestWebGpuBackend();
  const cpu = createCpuBackend();
  const results: CheckResult[] = [];
  const check = async (name: string, inputs: Record<string, Float32Array | Int32Array>, outputs: string[], call: <B>(k: KernelTable<B>, b: Record<string, B>) => void, rtol = 1e-4, atol = 1e-5) => {
    const want = await runOn(cpu, inputs, outputs, call);
    const got = await runOn(gpu, inputs, outputs, call);
    for (const o of outputs) {
      let maxError = 0, maxWant = 0;
      for (let i = 0; i < want[o].length; i++) {
        const e = Math.abs(got[o][i] - want[o][i]);
        maxError = Number.isNaN(e) ? Infinity : Math.max(maxError, e);
        maxWant = Math.max(maxWant, Math.abs(want[o][i]));
      }
      results.push({ name: `${name}.${o}`, maxError, allowed: atol + rtol * maxWant });
    }
  };
  for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
    const m = 65, n = 130, k = 33;
    await check(`matmul ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`, { a: rand(1, m * k), b: rand(2, k * n), o: new Float32Array(m * n) }, ['o'],
      (kt, b) => kt.matmul(b.a, b.b, b.o, { m, n, k, transA: ta, transB: tb, alpha: 1, beta: 0 }));
  }
  const rows = 4, cols = 3000;
  const labels = Int32Array.from({ length: rows }, (_, i) => (i * 977) % cols);
  for (const reducer of ['softmax-ce', 'sigmoid-ova'] as const) {
    await check(`marginLoss ${reducer}`, {
      z: rand(3, rows * cols), labels, grad: new Float32Array(rows * cols), rowLoss: new Float32Array(rows), rowLogitGrad: new Float32Array(rows), bias: Float32Array.of(-3),
    }, ['grad', 'rowLoss', 'rowLogitGrad'], (kt, b) => kt.marginLoss({
      logits: b.z, labels: b.labels, grad: b.grad, rowLoss: b.rowLoss, rowLogitGrad: b.rowLogitGrad, rowContext: null,
      bias: reducer === 'sigmoid-ova' ? b.bias : null, rows, cols, classOffset: 0, transform: scaledTransform(30), reducer,
      positiveWeight: 1, negativeWeight: 1, scale: 0.25,
    }));
  }
  await check('l2normalizeRows', { x: rand(4, 7 * 513), y: new Float32Array(7 * 513), norms: new Float32Array(7) }, ['y', 'norms'],
    (kt, b) => kt.l2normalizeRows(b.x, b.y, b.norms, 7, 513, 1e-12));
  await check('sumSquares', { x: rand(5, 100_001), o: new Float32Array(1) }, ['o'], (kt, b) => kt.sumSquares(b.x, b.o, 100_001));
  return { adapter: gpu.capabilities.description, hardware: gpu.capabilities.hardware, results };
}

(window as unknown as { frResults: Promise<unknown> }).frResults = main().catch((e: unknown) => ({ error: String((e as Error)?.stack ?? e) }));
