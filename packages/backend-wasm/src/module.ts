import { BackendError } from '@fr/core';
import { kernelsPlain, kernelsShared } from './wasm-binary.js';

/** The exports of the kernel module (assembly/*.ts); pointers are byte offsets into the memory. */
export interface KernelExports {
  matmulBlockSum(
    a: number, b: number, c: number, m: number, n: number, k: number, ldc: number, transA: number, transB: number,
    alpha: number, beta: number, i0: number, i1: number, j0: number, j1: number,
    count: number, strideA: number, strideB: number, preA: number, preB: number, preStride: number, own: number, scratch: number,
  ): void;
  matmulOwnPacking(scratch: number, at: number): void;
  packedABytes(m: number, k: number): number;
  packedBBytes(n: number, k: number): number;
  matmulScratchBytes(): number;
  peakFlops(iterations: number, seed: number): number;
  [name: string]: unknown;
}

function decode(base64: string): Uint8Array {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** The kernel module's bytes: the shared-memory build for threads, the plain one otherwise. */
export function kernelBytes(shared: boolean): Uint8Array {
  return decode(shared ? kernelsShared : kernelsPlain);
}

/** Whether this engine runs WebAssembly SIMD (validates the kernel module, which uses it). */
export function simdAvailable(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(kernelBytes(false) as BufferSource);
}

/** Whether memory can be shared with workers (SharedArrayBuffer: Node, or a cross-origin isolated page). */
export function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

export function kernelImports(memory: WebAssembly.Memory): WebAssembly.Imports {
  return {
    env: {
      memory,
      abort(_msg: number, _file: number, line: number, column: number) {
        throw new BackendError(`wasm backend: a kernel aborted at line ${line}:${column}`);
      },
    },
  };
}
