import { kernelBytes, kernelImports, simdAvailable, type KernelExports } from './module.js';

/**
 * This machine's single-thread SIMD peak in GFLOP/s, measured: twelve independent chains of
 * 128-bit multiplies and adds held in registers (the micro-kernels' instruction mix, no memory).
 * Returns 0 without SIMD.
 */
export async function measurePeakFlops(): Promise<number> {
  if (!simdAvailable()) return 0;
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  const { instance } = await WebAssembly.instantiate(kernelBytes(false) as BufferSource, kernelImports(memory));
  const e = instance.exports as unknown as KernelExports;
  e.peakFlops(1e6, 0.999);
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const iterations = 5e6;
    const t0 = performance.now();
    e.peakFlops(iterations, 0.999);
    const seconds = (performance.now() - t0) / 1000;
    best = Math.max(best, (iterations * 12 * 8) / seconds / 1e9);
  }
  return best;
}
