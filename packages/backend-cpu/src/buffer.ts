import { BackendError, type DType } from '@fr/core';

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
