import { BackendError, bytesPerElement, convertToFloat16, float16ToFloat32Array, type BackendCapabilities, type BackendStats, type DType, type HostArray, type KernelTable } from '@fr/core';

/** A CPU buffer: a typed array and its element type (float16: IEEE binary16 bit patterns). */
export interface CpuBuffer {
  readonly dtype: DType;
  readonly data: Float32Array | Int32Array | Uint16Array;
  readonly label: string;
}

/** The float32 view of a buffer (kernels receive only float buffers where they say so). */
export function f32(b: CpuBuffer): Float32Array {
  if (b.dtype === 'float16') throw new BackendError(`cpu backend: ${b.label || 'a buffer'} holds float16; this kernel reads and writes float32 (convert with fromFloat16)`);
  return b.data as Float32Array;
}

/** The float16 bits of a buffer. */
export function f16(b: CpuBuffer): Uint16Array {
  if (b.dtype !== 'float16') throw new BackendError(`cpu backend: ${b.label || 'a buffer'} holds ${b.dtype}, not float16`);
  return b.data as Uint16Array;
}

export function i32(b: CpuBuffer): Int32Array {
  return b.data as Int32Array;
}

/** The typed array of a buffer of `size` elements of `dtype`, over `memory` (a new ArrayBuffer if none). */
export function typedArray(dtype: DType, size: number, memory?: ArrayBufferLike): CpuBuffer['data'] {
  const m = memory ?? new ArrayBuffer(size * bytesPerElement(dtype));
  if (dtype === 'int32') return new Int32Array(m, 0, size);
  if (dtype === 'float16') return new Uint16Array(m, 0, size);
  return new Float32Array(m, 0, size);
}

/** What a CPU backend can do: float16 storage, one buffer limit, no hardware. */
export function cpuCapabilities(maxBufferSize: number, description: string): BackendCapabilities {
  return { float16: true, subgroups: false, maxBufferSize, maxStorageBufferBindingSize: maxBufferSize, hardware: false, description };
}

/** Refuses an allocation over the limit, naming the tensor. */
export function checkAllocation(who: string, bytes: number, maxBufferSize: number, label: string | undefined): void {
  if (bytes > maxBufferSize) {
    throw new BackendError(`${who}: tensor ${label || '(unnamed)'} needs ${bytes} bytes, over the limit of ${maxBufferSize} bytes`);
  }
}

/** A kernel table whose every kernel is `wrap(name, kernel)`. */
export function wrapKernels(table: KernelTable<CpuBuffer>, wrap: (name: string, kernel: (...args: unknown[]) => unknown) => (...args: unknown[]) => unknown): KernelTable<CpuBuffer> {
  return Object.fromEntries(Object.entries(table).map(([name, fn]) => [name, wrap(name, fn as (...args: unknown[]) => unknown)])) as unknown as KernelTable<CpuBuffer>;
}

/** Refuses a host write that overflows the buffer or puts int32 values into float16, naming the buffer. */
export function checkWrite(who: string, b: CpuBuffer, data: HostArray, offset: number): void {
  if (data.length + offset > b.data.length) {
    throw new BackendError(`${who}: writing ${data.length} values at ${offset} overflows ${b.label || 'a buffer'} of ${b.data.length}`);
  }
  if (b.dtype === 'float16' && data instanceof Int32Array) throw new BackendError(`${who}: writing int32 values into float16 ${b.label || 'buffer'}`);
}

/** Stores host values at `offset` (rounded to float16 in a float16 buffer). */
export function storeHost(b: CpuBuffer, data: HostArray, offset: number): void {
  if (b.dtype === 'float16') convertToFloat16(data as Float32Array, (b.data as Uint16Array).subarray(offset), data.length);
  else b.data.set(data, offset);
}

/**
 * A backend's `write` and `read` over host memory: checked stores and float16-aware loads through
 * `viewOf` (the buffer itself for the CPU backend), counted in `stats`.
 */
export function hostTransfer<B extends { dtype: DType }>(who: string, stats: BackendStats, viewOf: (b: B) => CpuBuffer) {
  return {
    write(b: B, data: HostArray, offset = 0): void {
      const v = viewOf(b);
      checkWrite(who, v, data, offset);
      storeHost(v, data, offset);
      stats.bytesWritten += data.length * bytesPerElement(b.dtype);
    },
    async read(b: B, _dtype: DType, size: number): Promise<Float32Array | Int32Array> {
      const v = viewOf(b);
      stats.bytesRead += size * bytesPerElement(b.dtype);
      return loadHost(v, size);
    },
  };
}

/** A copy of the first `size` values as host values; float16 buffers read back as the float32 values they hold. */
export function loadHost(b: CpuBuffer, size: number): Float32Array | Int32Array {
  if (b.dtype === 'float16') return float16ToFloat32Array((b.data as Uint16Array).subarray(0, size));
  return b.data.slice(0, size) as Float32Array | Int32Array;
}
