/** Backend choice: `auto` takes a hardware WebGPU adapter when there is one, else the CPU. */
import { createCpuBackend } from '@fr/backend-cpu';
import { BackendError, type Backend } from '@fr/core';

export type BackendChoice = 'auto' | 'cpu' | 'webgpu';

export interface SelectedBackend {
  backend: Backend;
  /** Why this backend: printed at the start of a run. */
  reason: string;
}

export async function selectBackend(choice: BackendChoice): Promise<SelectedBackend> {
  if (choice === 'cpu') return { backend: createCpuBackend(), reason: 'cpu (as configured)' };
  let gpu: Backend | null = null;
  let why = '';
  try {
    const { createNodeWebGpuBackend } = await import('@fr/backend-webgpu/node');
    gpu = await createNodeWebGpuBackend();
  } catch (e) {
    why = (e as Error).message;
  }
  if (choice === 'webgpu') {
    if (!gpu) throw new BackendError(`backend webgpu was asked for, but no WebGPU device could be created: ${why}`);
    return { backend: gpu, reason: `webgpu (as configured): ${gpu.capabilities.description}` };
  }
  if (gpu?.capabilities.hardware) return { backend: gpu, reason: `webgpu (auto: hardware adapter ${gpu.capabilities.description})` };
  const found = gpu ? `only a software adapter (${gpu.capabilities.description})` : `no WebGPU adapter (${why.split('\n')[0]})`;
  gpu?.dispose();
  return { backend: createCpuBackend(), reason: `cpu (auto: ${found})` };
}
