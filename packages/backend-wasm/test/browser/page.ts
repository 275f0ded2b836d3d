// Runs in Chromium, on the wasm backend at 1 and 2 threads: the kernel conformance kit against the
// TypeScript reference, the layer golden vectors (fetched from the test server), the gradient
// checker, and the same bits at 1 and 2 threads for a threaded matmul and convolution.
import { createCpuBackend } from '@fr/backend-cpu';
import { createRng, type Backend } from '@fr/core';
import { checkLayerGolden, gradCheck, runKernelConformance, type LayerGolden } from '@fr/core/testing';
import { createWasmBackend } from '../../src/index.js';
import { GRAD_CHECK_ELEMENTS, layerGradChecks } from '../grad-checks.js';

interface Run {
  requested: number;
  threads: number;
  simd: boolean;
  cases: number;
  layerCases: number;
  gradChecks: number;
  failed: string[];
  notices: string[];
  ms: number;
}

/** Every layer fixture through checkLayerGolden, then every gradient check; the failures, named. */
async function layersAndGradients(b: Backend, layers: Record<string, LayerGolden>): Promise<string[]> {
  const failed: string[] = [];
  for (const [file, golden] of Object.entries(layers)) {
    try {
      await checkLayerGolden(b, golden, file);
    } catch (e) {
      failed.push(String(e));
    }
  }
  for (const { name, fn, inputs } of layerGradChecks) {
    const r = await gradCheck(b, fn, inputs, { maxElements: GRAD_CHECK_ELEMENTS });
    if (!r.passed) failed.push(`gradient check ${name}: ${JSON.stringify(r.inputs)}`);
  }
  return failed;
}

function random(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** A matmul and a convolution big enough to be split over threads; their outputs, concatenated. */
async function threadedOutputs(b: Backend): Promise<Uint8Array> {
  const up = (d: Float32Array) => {
    const buf = b.alloc(d.length, 'float32');
    b.write(buf, d);
    return buf;
  };
  const [m, n, k] = [67, 301, 129];
  const c = up(random(m * n, 3));
  b.kernels.matmul(up(random(k * m, 1)), up(random(n * k, 2)), c, { m, n, k, transA: true, transB: true, alpha: 0.5, beta: 0.25 });
  const p = { batch: 2, inChannels: 16, inHeight: 20, inWidth: 20, outChannels: 24, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 1, outHeight: 20, outWidth: 20 };
  const out = b.alloc(2 * 24 * 400, 'float32');
  b.kernels.conv2d(up(random(2 * 16 * 400, 4)), up(random(24 * 16 * 9, 5)), out, p);
  const a = (await b.read(c, 'float32', m * n)) as Float32Array;
  const o = (await b.read(out, 'float32', 2 * 24 * 400)) as Float32Array;
  const all = new Float32Array(a.length + o.length);
  all.set(a);
  all.set(o, a.length);
  return new Uint8Array(all.buffer);
}

async function main() {
  const runs: Run[] = [];
  const outputs: Uint8Array[] = [];
  const reference = createCpuBackend();
  const layers = (await (await fetch('/fixtures/layers.json')).json()) as Record<string, LayerGolden>;
  for (const requested of [1, 2]) {
    const notices: string[] = [];
    const start = performance.now();
    const b = await createWasmBackend({ threads: requested, notice: (m) => notices.push(m) });
    const caps = b.capabilities as unknown as { threads: number; simd: boolean };
    const results = await runKernelConformance(b, reference);
    const failed = results.filter((r) => !r.passed).map((r) => `${r.name}: ${r.error ?? JSON.stringify(r.worst)}`);
    failed.push(...(await layersAndGradients(b, layers)));
    runs.push({
      requested, threads: caps.threads, simd: caps.simd, cases: results.length, notices, failed,
      layerCases: Object.keys(layers).length, gradChecks: layerGradChecks.length, ms: Math.round(performance.now() - start),
    });
    outputs.push(await threadedOutputs(b));
    b.dispose();
  }
  const sameBits = outputs[0].length === outputs[1].length && outputs[0].every((v, i) => v === outputs[1][i]);
  return { isolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? false, runs, sameBits };
}

(window as unknown as { frResults: Promise<unknown> }).frResults = main().catch((e) => ({ error: String(e?.stack ?? e) }));
