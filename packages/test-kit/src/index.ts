/**
 * The test kit of the workspace's suites: the backends every test runs on, the CPU reference,
 * WebGPU on Dawn and WebAssembly, and the loading of golden loss cases copied into a package's test/fixtures.
 * Without a GPU, Dawn finds SwiftShader through the Vulkan ICD set below; WebGPU tests never skip,
 * a missing adapter fails them. The closeness rule (`expectClose`, `compareTolerance`) and the
 * Chromium flags live in @fr/core/testing, which the backends' own tests use too.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createCpuBackend } from '@fr/backend-cpu';
import { createWasmBackend } from '@fr/backend-wasm';
import { createNodeWebGpuBackend } from '@fr/backend-webgpu/node';
import type { Backend } from '@fr/core';
import { parseLossCase, SWIFTSHADER_ICD, type LossCase } from '@fr/core/testing';

export interface TestBackend {
  name: string;
  create(): Promise<Backend> | Backend;
}

/** A Dawn WebGPU backend; SwiftShader's driver when no other Vulkan driver is configured. */
export async function webgpuTestBackend(): Promise<Backend> {
  // The Vulkan loader reads these when Dawn creates its instance, which happens on first use.
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  return createNodeWebGpuBackend();
}

/** The backends every test of a plugin runs on. */
export const backends: readonly TestBackend[] = [
  { name: 'cpu', create: () => createCpuBackend() },
  { name: 'webgpu', create: webgpuTestBackend },
  // Two threads, so every plugin suite also checks the split kernels (bit for bit at any count).
  { name: 'wasm', create: () => createWasmBackend({ threads: 2 }) },
];

/** The golden cases (.json) of a folder, validated, in name order; only names starting with `prefix`. */
export function lossFixtures(dir: URL, prefix = ''): LossCase[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f.startsWith(prefix))
    .sort()
    .map((f) => parseLossCase(readFileSync(new URL(f, dir), 'utf8'), f));
}
export { wasmOtherCalls } from './margin-path.js';
