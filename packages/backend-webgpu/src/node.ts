/**
 * Node entry: a WebGPU device from Dawn (npm `webgpu`). Without a GPU, point Vulkan at SwiftShader:
 * VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json.
 *
 * `webgpu` (Dawn's binaries for five platforms, about 130 MB) is an optional peer dependency, so
 * browser users never download it: this entry loads it when imported and, if it is not installed,
 * says so when a device is asked for.
 */
/// <reference types="@webgpu/types" preserve="true" />
import { tmpdir } from 'node:os';
import { BackendError } from '@fr/core';
import { createWebGpuBackendFromAdapter, type WebGpuBackend, type WebGpuBackendOptions } from './backend.js';

export * from './index.js';

/** The part of npm `webgpu` this entry uses (typed here so the published .d.ts never names it). */
interface DawnModule {
  create(options: string[]): GPU;
  globals: object;
}

const loaded: { dawn: DawnModule } | { error: BackendError } = await import('webgpu').then(
  (m: DawnModule) => ({ dawn: m }),
  (e: unknown) => ({ error: dawnLoadError(e) }),
);

function dawnLoadError(e: unknown): BackendError {
  const err = e as { code?: string; message?: string };
  const missing = (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && /['"]webgpu['"]/.test(err.message ?? '');
  if (missing) {
    return new BackendError(
      '@fr/backend-webgpu/node needs the package "webgpu" (Dawn), an optional peer dependency that is not installed: run `npm i webgpu` ' +
        '(browsers use the main entry, @fr/backend-webgpu, which needs no Dawn)',
      { cause: e },
    );
  }
  return new BackendError(`@fr/backend-webgpu/node: the package "webgpu" (Dawn) is installed but failed to load: ${err.message ?? String(e)}`, { cause: e });
}

let dawn: GPU | null = null;

/** The Dawn GPU object, created once; also installs the WebGPU globals (GPUBufferUsage, ...). */
export function nodeGpu(dawnOptions: string[] = []): GPU {
  if ('error' in loaded) throw loaded.error;
  if (!dawn) {
    // Dawn's Vulkan loader prints an error per adapter probe when XDG_RUNTIME_DIR is unset (as in
    // containers and CI); any writable directory silences it.
    process.env.XDG_RUNTIME_DIR ??= tmpdir();
    Object.assign(globalThis, loaded.dawn.globals);
    dawn = loaded.dawn.create(dawnOptions);
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
