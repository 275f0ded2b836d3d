/**
 * Node entry: a WebGPU device from Dawn (npm `webgpu`). Without a GPU, point Vulkan at SwiftShader:
 * VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json.
 */
import { tmpdir } from 'node:os';
import { create, globals } from 'webgpu';
import { BackendError } from '@fr/core';
import { createWebGpuBackendFromAdapter, type WebGpuBackend, type WebGpuBackendOptions } from './backend.js';

export * from './index.js';

let dawn: GPU | null = null;

/** The Dawn GPU object, created once; also installs the WebGPU globals (GPUBufferUsage, ...). */
export function nodeGpu(dawnOptions: string[] = []): GPU {
  if (!dawn) {
    // Dawn's Vulkan loader prints an error per adapter probe when XDG_RUNTIME_DIR is unset (as in
    // containers and CI); any writable directory silences it.
    process.env.XDG_RUNTIME_DIR ??= tmpdir();
    Object.assign(globalThis, globals);
    dawn = create(dawnOptions);
  }
  return dawn;
}

export interface NodeWebGpuOptions extends WebGpuBackendOptions {
  powerPreference?: GPUPowerPreference;
  /** Dawn toggles passed to `create()`, e.g. ["enable-dawn-features=..."]. */
  dawnOptions?: string[];
}

/** Creates the backend on a Dawn adapter. */
export async function createNodeWebGpuBackend(options: NodeWebGpuOptions = {}): Promise<WebGpuBackend> {
  const gpu = nodeGpu(options.dawnOptions);
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new BackendError(
      'webgpu backend: Dawn found no adapter. Without a GPU, install chromium and libvulkan1 and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json',
    );
  }
  return createWebGpuBackendFromAdapter(adapter, options);
}
