import type { KernelTable } from './kernels.js';

/**
 * Element types a buffer may hold. float16 is a storage type only: 2 bytes per element, read and
 * written by `toFloat16` / `fromFloat16` and the `halfB` operand of `matmul`; other kernels take
 * float32 (accumulation stays float32).
 */
export type DType = 'float32' | 'int32' | 'float16';

export type HostArray = Float32Array | Int32Array;

/** The host array a buffer of dtype `D` reads back as: Int32Array for int32, Float32Array for float32 and float16. */
export type HostArrayOf<D extends DType> = D extends 'int32' ? Int32Array : Float32Array;

export interface BackendCapabilities {
  /** The backend stores float16 buffers in 2 bytes per element (see DType). */
  float16: boolean;
  /** Subgroup operations are available to kernels. */
  subgroups: boolean;
  /** Largest buffer the device allows, in bytes. */
  maxBufferSize: number;
  /** Largest buffer one kernel binding may see, in bytes. */
  maxStorageBufferBindingSize: number;
  /** A hardware accelerator (false for CPU and software adapters such as SwiftShader). */
  hardware: boolean;
  /** Human-readable description of the device, for logs. */
  description: string;
}

export interface AllocOptions {
  /** The tensor's name, used in error messages (for example "arcface.weight"). */
  label?: string;
}

/**
 * A compute backend. Buffers are opaque handles of type `B`. Kernels are enqueued in order; a
 * backend may run them later (WebGPU batches them), but `read` sees every kernel enqueued before it.
 */
export interface Backend<B = unknown> {
  /** Short name: "cpu", "webgpu". */
  readonly name: string;
  readonly capabilities: BackendCapabilities;
  /** Allocates an uninitialised buffer of `size` elements; refuses sizes over the device limits. */
  alloc(size: number, dtype: DType, options?: AllocOptions): B;
  /** Returns a buffer to the backend (it may pool it). */
  free(buffer: B): void;
  /** Copies host data into a buffer, starting at element `offset`. */
  write(buffer: B, data: HostArray, offset?: number): void;
  /** Reads `size` elements of a buffer back to the host once every enqueued kernel has run. */
  read(buffer: B, dtype: DType, size: number): Promise<HostArray>;
  readonly kernels: KernelTable<B>;
  /** Resolves when every enqueued kernel has finished. */
  sync(): Promise<void>;
  /** Counters since creation: kernels dispatched and bytes moved to and from the host. */
  stats(): BackendStats;
  /** Releases the device and every buffer. */
  dispose(): void;
}

export interface BackendStats {
  dispatches: number;
  bytesWritten: number;
  bytesRead: number;
  buffersLive: number;
  bytesLive: number;
}

/** Types a backend object; a backend missing a kernel fails to compile here. */
export function defineBackend<B>(backend: Backend<B>): Backend<B> {
  return backend;
}

export function bytesPerElement(dtype: DType): number {
  return dtype === 'float16' ? 2 : 4;
}
