/**
 * Messages between the worker CPU backend (main thread) and its worker thread. Buffers live in
 * SharedArrayBuffers that both threads view; messages name them by id. The worker runs messages in
 * order and counts each one done in `control[DONE]`, so the main thread can wait for the queue.
 */
import type { DType, HostArray } from '@fr/core';

/** Index of the done counter in the control array; `FAILED` is set once a message has thrown. */
export const DONE = 0;
export const FAILED = 1;

/** A buffer argument of a kernel, as it crosses to the worker. */
export interface BufferRef {
  readonly fr_buffer: number;
}

export type WorkerMessage =
  | { op: 'alloc'; id: number; dtype: DType; memory: SharedArrayBuffer; size: number; label: string }
  | { op: 'free'; id: number }
  | { op: 'write'; id: number; data: HostArray; offset: number }
  | { op: 'kernel'; name: string; args: unknown[] }
  | { op: 'read'; id: number; size: number; token: number }
  | { op: 'sync'; token: number };

export type WorkerReply =
  | { op: 'read'; token: number; data: Float32Array | Int32Array | Uint16Array }
  | { op: 'sync'; token: number }
  | { op: 'failed'; token: number; message: string };
