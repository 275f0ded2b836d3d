import { BackendError } from '@fr/core';

const PAGE = 65536;
/** Bytes below this offset belong to the kernels' own (empty) data; buffers start above. */
const BASE = 65536;
const ALIGN = 64;

/**
 * Buffers' places in the one WebAssembly.Memory: a bump pointer with free lists per size class
 * (sizes rounded up to 1/8 of their power of two, so a freed block serves similar sizes again).
 * The memory grows as needed; it never shrinks.
 */
export class Heap {
  private top = BASE;
  private readonly free = new Map<number, number[]>();

  constructor(readonly memory: WebAssembly.Memory, private readonly maxBytes: number) {}

  static sizeClass(bytes: number): number {
    const b = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    if (b <= 4096) return b;
    const step = 2 ** (Math.floor(Math.log2(b)) - 3);
    return Math.ceil(b / step) * step;
  }

  /** A block of at least `bytes`, 64-byte aligned; returns its offset and its class size. */
  alloc(bytes: number, label: string): { ptr: number; size: number } {
    const size = Heap.sizeClass(bytes);
    const list = this.free.get(size);
    if (list && list.length) return { ptr: list.pop()!, size };
    const ptr = this.top;
    const end = ptr + size;
    if (end > this.maxBytes) {
      throw new BackendError(`wasm backend: tensor ${label || '(unnamed)'} needs ${bytes} bytes, and the memory would pass its limit of ${this.maxBytes} bytes (${ptr} in use or pooled)`);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return { ptr, size };
  }

  release(ptr: number, size: number): void {
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(ptr);
  }
}
