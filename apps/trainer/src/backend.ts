/**
 * Backend choice: `auto` takes a hardware WebGPU adapter when there is one, else the WebAssembly
 * backend, else the TypeScript `cpu` backend (the reference).
 */
import { createCpuBackend } from '@fr/backend-cpu';
import { BackendError, type Backend } from '@fr/core';

export const BACKEND_CHOICES = ['auto', 'cpu', 'wasm', 'webgpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface SelectedBackend {
  backend: Backend;
  /** Why this backend: printed at the start of a run. */
  reason: string;
  /** Opens another device of the same kind: the devices of a sharded head (`head.shards`). */
  openDevice: () => Promise<Backend>;
}

/** Further CPU devices are CPU backends on worker threads: shards of a head then compute at once. */
async function openCpu(): Promise<Backend> {
  const { createWorkerCpuBackend } = await import('@fr/backend-cpu/node');
  return createWorkerCpuBackend();
}

async function openWasm(): Promise<Backend> {
  const { createWasmBackend } = await import('@fr/backend-wasm');
  return createWasmBackend();
}

async function openWebGpu(): Promise<Backend> {
  const { createNodeWebGpuBackend } = await import('@fr/backend-webgpu/node');
  return createNodeWebGpuBackend();
}

export async function selectBackend(choice: BackendChoice): Promise<SelectedBackend> {
  if (choice === 'cpu') return { backend: createCpuBackend(), reason: 'cpu (as configured)', openDevice: openCpu };
  if (choice === 'wasm') {
    const wasm = await openWasm();
    return { backend: wasm, reason: `wasm (as configured): ${wasm.capabilities.description}`, openDevice: openWasm };
  }
  let gpu: Backend | null = null;
  let why = '';
  try {
    gpu = await openWebGpu();
  } catch (e) {
    why = (e as Error).message;
  }
  if (choice === 'webgpu') {
    if (!gpu) throw new BackendError(`backend webgpu was asked for, but no WebGPU device could be created: ${why}`);
    return { backend: gpu, reason: `webgpu (as configured): ${gpu.capabilities.description}`, openDevice: openWebGpu };
  }
  if (gpu?.capabilities.hardware) return { backend: gpu, reason: `webgpu (auto: hardware adapter ${gpu.capabilities.description})`, openDevice: openWebGpu };
  const found = gpu ? `only a software adapter (${gpu.capabilities.description})` : `no WebGPU adapter (${why.split('\n')[0]})`;
  gpu?.dispose();
  try {
    const wasm = await openWasm();
    return { backend: wasm, reason: `wasm (auto: ${found}; ${wasm.capabilities.description})`, openDevice: openWasm };
  } catch (e) {
    return { backend: createCpuBackend(), reason: `cpu (auto: ${found}; wasm failed: ${(e as Error).message})`, openDevice: openCpu };
  }
}
