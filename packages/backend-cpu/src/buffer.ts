import type { DType } from '@fr/core';

/** A CPU buffer: a typed array and its element type. */
export interface CpuBuffer {
  readonly dtype: DType;
  readonly data: Float32Array | Int32Array;
  readonly label: string;
}

/** The float32 view of a buffer (kernels receive only float buffers where they say so). */
export function f32(b: CpuBuffer): Float32Array {
  return b.data as Float32Array;
}

export function i32(b: CpuBuffer): Int32Array {
  return b.data as Int32Array;
}
