import { createWasmBackend } from '@fr/backend-wasm';
import { createWebGpuBackendFromAdapter, describeAdapter } from '@fr/backend-webgpu';
import type { Backend } from '@fr/core';

/**
 * WebGPU on a hardware adapter, else the WebAssembly backend (SIMD kernels, one worker thread per
 * core when the page is cross-origin isolated). A software adapter (SwiftShader, llvmpipe) emulates
 * the GPU on the CPU and is slower than wasm; `useSoftwareAdapter` takes it anyway.
 */
export async function pickBackend(useSoftwareAdapter = false): Promise<Backend> {
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (adapter && (describeAdapter(adapter).hardware || useSoftwareAdapter)) {
    return createWebGpuBackendFromAdapter(adapter);
  }
  return createWasmBackend();
}
