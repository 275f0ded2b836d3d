import { checkAllocation, hostTransfer } from '@fr/backend-cpu';
import { BackendError, bytesPerElement, defineBackend, type Backend, type BackendCapabilities, type BackendStats, type KernelTable } from '@fr/core';
import { Heap } from './heap.js';
import { kernelTable } from './kernels.js';
import { kernelBytes, kernelImports, sharedMemoryAvailable, simdAvailable, type KernelExports } from './module.js';
import { ThreadPool } from './pool.js';
import { importNodeBuiltin, isNode, view, WasmBuffer, type Runtime } from './runtime.js';

export interface WasmBackendOptions {
  /** Threads the kernels split over, the calling one included (default: the available cores). */
  threads?: number;
  /** Where the fallbacks (no SIMD, no shared memory) are told, once each (default: console.warn). */
  notice?: (message: string) => void;
}

export interface WasmCapabilities extends BackendCapabilities {
  /** The hot kernels run WebAssembly SIMD; false: every kernel is the TypeScript reference. */
  simd: boolean;
  /** Threads the kernels use (1 without SharedArrayBuffer). */
  threads: number;
  /** Why a fallback applies, if one does. */
  fallbacks: string[];
}

const MAX_PAGES = 65536;
/** wasm32 addresses 4 GiB; the backend keeps buffers under it, one at most 2 GiB. */
const MAX_BUFFER = 2 ** 31;

async function availableCores(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav?.hardwareConcurrency) return nav.hardwareConcurrency;
  if (isNode) return (await importNodeBuiltin<typeof import('node:os')>('node:os')).availableParallelism();
  return 1;
}

/** The memory and the bytes it may grow to (some browsers refuse to reserve 4 GiB: then 1 GiB). */
function createMemory(shared: boolean): { memory: WebAssembly.Memory; maxBytes: number } {
  let last: unknown;
  for (const maximum of [MAX_PAGES, MAX_PAGES / 4]) {
    try {
      return { memory: new WebAssembly.Memory({ initial: 256, maximum, shared }), maxBytes: maximum * 65536 };
    } catch (e) {
      last = e;
    }
  }
  throw new BackendError(`wasm backend: cannot create a WebAssembly.Memory: ${(last as Error).message}`);
}

/** Creates the WebAssembly backend: SIMD kernels on `threads` threads sharing one memory. */
export async function createWasmBackend(options: WasmBackendOptions = {}): Promise<Backend<WasmBuffer>> {
  const requested = options.threads ?? (await availableCores());
  if (!Number.isInteger(requested) || requested < 1 || requested > 64) {
    throw new BackendError(`wasm backend: threads must be an integer from 1 to 64, got ${options.threads}`);
  }
  const notice = options.notice ?? ((m: string) => console.warn(m));
  const fallbacks: string[] = [];
  const simd = simdAvailable();
  if (!simd) fallbacks.push('no WebAssembly SIMD in this engine: every kernel runs the TypeScript reference');
  const shared = simd && requested > 1 && sharedMemoryAvailable();
  if (simd && requested > 1 && !shared) fallbacks.push('no SharedArrayBuffer (a page needs cross-origin isolation: COOP/COEP headers): one thread');
  for (const f of fallbacks) notice(`wasm backend: ${f}`);
  const threads = shared ? requested : 1;
  const { memory, maxBytes } = createMemory(shared);
  const heap = new Heap(memory, maxBytes);
  let exports: KernelExports | null = null;
  let pool: ThreadPool | null = null;
  const scratch: number[] = [];
  if (simd) {
    const module = await WebAssembly.compile(kernelBytes(shared) as BufferSource);
    const instance = await WebAssembly.instantiate(module, kernelImports(memory));
    exports = instance.exports as unknown as KernelExports;
    for (let t = 0; t < threads; t++) scratch.push(heap.alloc(exports.matmulScratchBytes(), 'matmul scratch').ptr);
    if (threads > 1) pool = await ThreadPool.start(threads, module, memory, instance.exports as Record<string, unknown>, scratch);
  }
  const rt: Runtime = { memory, heap, exports: exports as KernelExports, pool, threads, scratch };
  const stats: BackendStats = { dispatches: 0, bytesWritten: 0, bytesRead: 0, buffersLive: 0, bytesLive: 0 };
  const live = new Set<WasmBuffer>();
  let disposed = false;
  const table = kernelTable(rt, simd);
  const kernels = Object.fromEntries(Object.entries(table).map(([name, fn]) => [name, (...args: unknown[]) => {
    if (disposed) throw new BackendError(`wasm backend: kernel ${name} called after dispose`);
    stats.dispatches++;
    return (fn as (...a: unknown[]) => unknown)(...args);
  }])) as unknown as KernelTable<WasmBuffer>;
  const capabilities: WasmCapabilities = {
    float16: true,
    subgroups: false,
    maxBufferSize: MAX_BUFFER,
    maxStorageBufferBindingSize: MAX_BUFFER,
    hardware: false,
    description: simd ? `CPU (WebAssembly SIMD, ${threads} thread${threads > 1 ? 's' : ''})` : 'CPU (WebAssembly without SIMD: TypeScript kernels)',
    simd,
    threads,
    fallbacks,
  };
  return defineBackend<WasmBuffer>({
    name: 'wasm',
    capabilities,
    alloc(size, dtype, o = {}) {
      if (disposed) throw new BackendError('wasm backend: alloc after dispose');
      const bytes = size * bytesPerElement(dtype);
      checkAllocation('wasm backend', bytes, MAX_BUFFER, o.label);
      const block = heap.alloc(bytes, o.label ?? '');
      const b = new WasmBuffer(block.ptr, size, dtype, o.label ?? '', block.size);
      live.add(b);
      stats.buffersLive++;
      stats.bytesLive += bytes;
      return b;
    },
    free(b) {
      if (live.delete(b)) {
        heap.release(b.ptr, b.reserved);
        stats.buffersLive--;
        stats.bytesLive -= b.size * bytesPerElement(b.dtype);
      }
    },
    ...hostTransfer<WasmBuffer>('wasm backend', stats, (b) => view(rt, b)),
    kernels,
    async sync() {},
    stats: () => ({ ...stats }),
    dispose() {
      disposed = true;
      live.clear();
      pool?.terminate();
    },
  });
}
