/**
 * Picks the compute backend: WebGPU on navigator.gpu when the page has a hardware adapter, else the
 * WebAssembly backend (threads when the page is cross-origin isolated), else the CPU reference. A
 * software adapter (SwiftShader, llvmpipe: WebGPU emulated on the CPU) counts as no GPU, since the
 * wasm kernels are faster on the same cores; `?backend=webgpu` takes it all the same.
 */
import { createCpuBackend } from '@fr/backend-cpu';
import { createWasmBackend } from '@fr/backend-wasm';
import { createWebGpuBackendFromAdapter, describeAdapter } from '@fr/backend-webgpu';
import type { Backend } from '@fr/core';

export interface BackendChoice {
  backend: Backend;
  kind: 'webgpu' | 'wasm' | 'cpu';
  /** What runs, for the badge: the adapter's description. */
  description: string;
  /** A hardware GPU (false for software adapters such as SwiftShader, and for wasm and the CPU). */
  hardware: boolean;
  /** Set when the page fell back to wasm or the CPU: why WebGPU was not used. */
  fallbackReason?: string;
  /** Set when the fallback was chosen over a software adapter: that adapter's description. */
  skippedAdapter?: string;
}

/** The fallback's lead: no WebGPU at all, or only a software adapter. */
export function fallbackLead(b: BackendChoice): string {
  return b.skippedAdapter ? 'No hardware GPU here' : 'WebGPU is not available here';
}

/** What the page asks for (`?backend=`): auto takes WebGPU on hardware only. */
export type BackendRequest = 'auto' | 'webgpu' | 'wasm' | 'cpu';

interface GpuLike {
  requestAdapter(o?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GPUAdapter | null>;
}

async function requestAdapter(): Promise<GPUAdapter> {
  const gpu = (navigator as { gpu?: GpuLike }).gpu;
  if (!gpu) throw new Error('navigator.gpu is missing: this browser has no WebGPU, or it is disabled');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() found no adapter');
  return adapter;
}

function webgpu(adapter: GPUAdapter): Promise<Backend> {
  // Software adapters (SwiftShader) run each workgroup of a reduction serially: 64-thread groups
  // make the one-workgroup-per-weight gradient kernels about 6x faster there than 256.
  const { hardware } = describeAdapter(adapter);
  return createWebGpuBackendFromAdapter(adapter, { workgroupSize: hardware ? 256 : 64 });
}

/** The wasm backend, or the CPU reference if it cannot start; `why` says why WebGPU was not used. */
async function wasmOrCpu(why: string | undefined, skippedAdapter?: string): Promise<BackendChoice> {
  try {
    const backend = await createWasmBackend();
    return { backend, kind: 'wasm', description: backend.capabilities.description, hardware: false, fallbackReason: why, skippedAdapter };
  } catch (e) {
    const backend = createCpuBackend();
    return { backend, kind: 'cpu', description: backend.capabilities.description, hardware: false, fallbackReason: `${why ? `${why}; ` : ''}wasm: ${(e as Error).message}`, skippedAdapter };
  }
}

export async function chooseBackend(prefer: BackendRequest = 'auto'): Promise<BackendChoice> {
  if (prefer === 'auto' || prefer === 'webgpu') {
    let adapter: GPUAdapter;
    try {
      adapter = await requestAdapter();
    } catch (e) {
      return wasmOrCpu((e as Error).message);
    }
    const { hardware, description } = describeAdapter(adapter);
    if (prefer === 'auto' && !hardware) {
      return wasmOrCpu(`the only WebGPU adapter, ${description}, is a software adapter: WebGPU emulated on the CPU, slower there than the WebAssembly kernels; ?backend=webgpu uses it anyway`, description);
    }
    try {
      const backend = await webgpu(adapter);
      return { backend, kind: 'webgpu', description: backend.capabilities.description, hardware: backend.capabilities.hardware };
    } catch (e) {
      return wasmOrCpu((e as Error).message);
    }
  }
  if (prefer === 'wasm') return wasmOrCpu(undefined);
  const backend = createCpuBackend();
  return { backend, kind: 'cpu', description: 'CPU backend chosen with ?backend=cpu', hardware: false };
}
