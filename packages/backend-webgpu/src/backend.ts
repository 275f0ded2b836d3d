/** Assembles the WebGPU backend from a device: runtime (buffers, batching) plus the kernel table. */
import { BackendError, defineBackend, type Backend, type BackendCapabilities } from '@fr/core';
import { createKernels } from './kernels.js';
import { Runtime, type GpuBuffer, type WebGpuStats } from './runtime.js';

export interface WebGpuBackendOptions {
  /** Threads per workgroup for elementwise and reduction kernels: 64, 128 or 256 (default: 256, capped by the device). */
  workgroupSize?: 64 | 128 | 256;
  /** Dispatches recorded before a submit (default 64). */
  batchSize?: number;
  /** Bytes of freed buffers kept for reuse (default 512 MiB). */
  maxPooledBytes?: number;
  /** Refuse buffers over this many bytes even if the device allows more. */
  maxBufferSize?: number;
  /** Print each compiled shader with its key (default: FR_DEBUG contains "wgsl"). */
  debugWgsl?: boolean;
  /** Destroy the device in dispose() (default true: the backend owns the device it is given). */
  destroyDeviceOnDispose?: boolean;
  /** The adapter, to describe the device in `capabilities` (whether it is hardware, its name). */
  adapter?: GPUAdapter | null;
  /**
   * Matmul form (also used by 1x1 convolutions): "tiled" through workgroup memory, or "direct"
   * from storage without barriers. Default: tiled on hardware adapters, direct on software ones.
   */
  matmul?: 'tiled' | 'direct';
  /**
   * Row normalisation and marginLoss: one workgroup per row ("workgroup"; normalisation goes one
   * thread per row from 1,024 rows), or always one thread per row ("thread"). Default: workgroup
   * on hardware adapters, thread on software ones.
   */
  rowReduction?: 'workgroup' | 'thread';
}

export interface WebGpuBackend extends Backend<GpuBuffer> {
  readonly device: GPUDevice;
  stats(): WebGpuStats;
}

function envDebug(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return (env?.FR_DEBUG ?? '').split(/[,\s]+/).includes('wgsl');
}

/** Describes an adapter; software adapters (SwiftShader, llvmpipe, WARP) are not hardware. */
export function describeAdapter(adapter: GPUAdapter | null | undefined): { hardware: boolean; description: string } {
  if (!adapter) return { hardware: true, description: 'WebGPU device' };
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s);
  const description = parts.length > 0 ? parts.join(' / ') : 'WebGPU adapter';
  const fallback = info?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  const software = fallback || /swiftshader|llvmpipe|lavapipe|softpipe|warp|microsoft basic render|cpu/i.test(description);
  return { hardware: !software, description };
}

/** Creates the backend on a device you already have. */
export function createWebGpuBackend(device: GPUDevice, options: WebGpuBackendOptions = {}): WebGpuBackend {
  const limit = device.limits.maxComputeInvocationsPerWorkgroup;
  const wg = Math.min(options.workgroupSize ?? 256, 2 ** Math.floor(Math.log2(limit)));
  if (![64, 128, 256].includes(wg)) throw new BackendError(`webgpu backend: workgroup size ${wg} is not 64, 128 or 256`);
  if (limit < 256 || device.limits.maxComputeWorkgroupStorageSize < 8192) {
    throw new BackendError('webgpu backend: the device is below the WebGPU default compute limits (256 invocations, 16 KiB workgroup storage)');
  }
  const rt = new Runtime(device, {
    batchSize: options.batchSize ?? 64,
    maxPooledBytes: options.maxPooledBytes ?? 512 * 2 ** 20,
    maxBufferSize: options.maxBufferSize,
    debugWgsl: options.debugWgsl ?? envDebug(),
    destroyDevice: options.destroyDeviceOnDispose ?? true,
  });
  const { hardware, description } = describeAdapter(options.adapter);
  const capabilities: BackendCapabilities = {
    // float16 buffers hold two binary16 values per word (pack2x16float): no shader-f16 needed.
    float16: true,
    subgroups: device.features.has('subgroups'),
    maxBufferSize: rt.limits.maxBufferSize,
    maxStorageBufferBindingSize: rt.limits.maxStorageBufferBindingSize,
    hardware,
    description,
  };
  const backend = defineBackend<GpuBuffer>({
    name: 'webgpu',
    capabilities,
    alloc: (size, dtype, o = {}) => rt.alloc(size, dtype, o.label ?? ''),
    free: (b) => rt.free(b),
    write: (b, data, offset = 0) => rt.write(b, data, offset),
    read: (b, dtype, size) => rt.read(b, dtype, size),
    kernels: createKernels(rt, wg, {
      matmul: options.matmul ?? (hardware ? 'tiled' : 'direct'),
      rowReduction: options.rowReduction ?? (hardware ? 'workgroup' : 'thread'),
    }),
    sync: () => rt.sync(),
    stats: () => rt.stats(),
    dispose: () => rt.dispose(),
  });
  return Object.assign(backend, { device, stats: () => rt.stats() });
}

/** Limits worth raising from the WebGPU defaults to what the adapter allows. */
const WANTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

/** Requests a device with the adapter's full compute limits and the optional features we use. */
export async function requestDeviceFor(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const requiredFeatures = (['subgroups', 'shader-f16'] as const).filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  return adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'fr' });
}

/** Creates a backend from an adapter: requests the device, keeps the adapter's description. */
export async function createWebGpuBackendFromAdapter(adapter: GPUAdapter, options: WebGpuBackendOptions = {}): Promise<WebGpuBackend> {
  const device = await requestDeviceFor(adapter);
  return createWebGpuBackend(device, { ...options, adapter });
}
