/**
 * Backends every test of this package runs on: the CPU reference, WebGPU on Dawn and WebAssembly. Without a
 * GPU, Dawn finds SwiftShader through the Vulkan ICD set below; the WebGPU tests never skip, a
 * missing adapter fails them.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createCpuBackend } from '@fr/backend-cpu';
import { createWasmBackend } from '@fr/backend-wasm';
import { createNodeWebGpuBackend } from '@fr/backend-webgpu/node';
import type { Backend } from '@fr/core';
import { parseLossCase, type LossCase } from '@fr/core/testing';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface TestBackend {
  name: string;
  create(): Promise<Backend> | Backend;
}

async function webgpu(): Promise<Backend> {
  // The Vulkan loader reads these when Dawn creates its instance, which happens on first use.
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  return createNodeWebGpuBackend();
}

export const backends: TestBackend[] = [
  { name: 'cpu', create: () => createCpuBackend() },
  { name: 'webgpu', create: webgpu },
  { name: 'wasm', create: () => createWasmBackend({ threads: 2 }) },
];

/** The golden cases copied into test/fixtures, validated. */
export function fixtures(prefix = ''): LossCase[] {
  const dir = new URL('./fixtures/', import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f.startsWith(prefix))
    .sort()
    .map((f) => parseLossCase(readFileSync(new URL(f, dir), 'utf8'), f));
}
