/**
 * @fr/backend-webgpu: every kernel of the @fr kernel table in WGSL. This entry uses the browser's
 * `navigator.gpu`; `@fr/backend-webgpu/node` gets a device from Dawn (npm `webgpu`) instead.
 */
/// <reference types="@webgpu/types" preserve="true" />
// The WebGPU globals (GPUDevice, GPUBufferUsage, ...) come from @webgpu/types, a dependency; the
// directive is kept in the published .d.ts so consumers type-check without skipLibCheck.
import { BackendError } from '@fr/core';
import { createWebGpuBackendFromAdapter, type WebGpuBackend, type WebGpuBackendOptions } from './backend.js';

export {
  createWebGpuBackend,
  createWebGpuBackendFromAdapter,
  describeAdapter,
  requestDeviceFor,
  type WebGpuBackend,
  type WebGpuBackendOptions,
} from './backend.js';
export type { GpuBuffer, WebGpuStats } from './runtime.js';
export { marginLossSource } from './margin-loss.js';

export interface RequestWebGpuOptions extends WebGpuBackendOptions {
  powerPreference?: GPUPowerPreference;
  /** The GPU object to ask (default `navigator.gpu`). */
  gpu?: GPU;
}

/** Creates the backend on `navigator.gpu` (browsers, Deno, or Node after installing Dawn's globals). */
export async function requestWebGpuBackend(options: RequestWebGpuOptions = {}): Promise<WebGpuBackend> {
  const gpu = options.gpu ?? (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) throw new BackendError('webgpu backend: navigator.gpu is not available (no WebGPU in this environment)');
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new BackendError('webgpu backend: navigator.gpu.requestAdapter() found no adapter');
  return createWebGpuBackendFromAdapter(adapter, options);
}
