/**
 * The CPU backend on a worker thread (Node): the same kernels, run in order on another core, so
 * that several of these backends compute at once (the shards of a classifier head, one per
 * worker). Buffers are SharedArrayBuffers viewed by both threads; kernels are posted and return at
 * once, reads resolve when the worker reaches them.
 *
 * marginLoss takes a margin transform, whose functions cannot cross to another thread: it runs on
 * the calling thread, over the shared buffers, once the worker has finished what was posted before
 * (Atomics.wait). Its share of a head's work is small next to the matmuls around it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type Transferable } from 'node:worker_threads';
import { BackendError, bytesPerElement, defineBackend, float16ToFloat32Array, type Backend, type BackendStats } from '@fr/core';
import { checkAllocation, checkWrite, cpuCapabilities, typedArray, wrapKernels, type CpuBuffer } from './buffer.js';
import { cpuKernels, type CpuBackendOptions } from './index.js';
import { DONE, FAILED, type BufferRef, type WorkerMessage, type WorkerReply } from './worker-protocol.js';

/** Kernels whose arguments cannot be posted to the worker (see the module comment). */
const CALLING_THREAD_KERNELS = new Set(['marginLoss']);

/**
 * Starts the worker thread: the compiled file next to this one, or, when this module runs from its
 * TypeScript source (tests, the repository's tools), that source through tsx with the workspace's
 * source condition.
 */
function startWorker(workerData: unknown, transferList: Transferable[]): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker-thread.js', import.meta.url), { workerData, transferList });
  const source = JSON.stringify(new URL('./worker-thread.ts', import.meta.url).href);
  // tsx as this module resolves it, not as the working directory would (a run from a folder outside
  // the workspace). A thread that cannot start says why through the failure port and releases the
  // calling thread, which may already be waiting for it in Atomics.wait.
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const tsxApi = (JSON.parse(readFileSync(tsxPackage, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api']!.import.default;
  const tsx = JSON.stringify(pathToFileURL(join(dirname(tsxPackage), tsxApi)).href);
  const boot = `const { workerData } = require('node:worker_threads');
import(${tsx}).then((tsx) => tsx.tsImport(${source}, ${source})).catch((e) => {
  const control = new Int32Array(workerData.control);
  workerData.failures.postMessage({ message: 'the worker thread did not start: ' + e.message });
  Atomics.store(control, ${FAILED}, 1);
  Atomics.store(control, ${DONE}, 0x7fffffff);
  Atomics.notify(control, ${DONE});
});`;
  return new Worker(boot, { eval: true, execArgv: ['--conditions=@fr/source'], workerData, transferList });
}

/** Creates a CPU backend whose kernels run on a worker thread of its own. */
export function createWorkerCpuBackend(options: CpuBackendOptions = {}): Backend<CpuBuffer> {
  const maxBufferSize = options.maxBufferSize ?? 2 ** 31;
  const stats: BackendStats = { dispatches: 0, bytesWritten: 0, bytesRead: 0, buffersLive: 0, bytesLive: 0 };
  const control = new Int32Array(new SharedArrayBuffer(8));
  const failures = new MessageChannel();
  const worker = startWorker({ control: control.buffer, failures: failures.port2 }, [failures.port2]);
  // The worker must not keep a process alive on its own.
  worker.unref();
  failures.port1.unref();
  const ids = new WeakMap<CpuBuffer, number>();
  let nextId = 1;
  let posted = 0;
  let nextToken = 1;
  let disposed = false;
  let exited: Error | null = null;
  const pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();

  worker.on('message', (reply: WorkerReply) => {
    const waiter = pending.get(reply.token);
    pending.delete(reply.token);
    waiter?.resolve(reply);
  });
  worker.on('error', (e) => {
    exited = e;
    for (const w of pending.values()) w.reject(new BackendError(`worker cpu backend: the worker thread failed: ${e.message}`));
    pending.clear();
  });

  function post(msg: WorkerMessage): void {
    if (disposed) throw new BackendError(`worker cpu backend: ${msg.op === 'kernel' ? `kernel ${msg.name}` : msg.op} after dispose`);
    if (exited) throw new BackendError(`worker cpu backend: the worker thread failed: ${exited.message}`);
    posted++;
    worker.postMessage(msg);
  }

  /** The first error the worker met, as a BackendError (null if none). */
  function failure(): BackendError | null {
    if (Atomics.load(control, FAILED) === 0) return null;
    const m = receiveMessageOnPort(failures.port1);
    return new BackendError(`worker cpu backend: ${m ? (m.message as { message: string }).message : 'a kernel failed'}`);
  }

  /** Blocks until the worker has run every message posted so far. */
  function drain(): void {
    for (let done = Atomics.load(control, DONE); done < posted; done = Atomics.load(control, DONE)) Atomics.wait(control, DONE, done);
    const e = failure();
    if (e) throw e;
  }

  async function request(msg: WorkerMessage & { token: number }): Promise<WorkerReply> {
    const reply = await new Promise<WorkerReply>((resolve, reject) => {
      pending.set(msg.token, { resolve, reject });
      post(msg);
    });
    if (reply.op === 'failed') throw new BackendError(`worker cpu backend: ${reply.message}`);
    return reply;
  }

  /** Buffer arguments become references the worker resolves; everything else crosses as is. */
  function ref(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(ref);
    if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
      const id = ids.get(value as CpuBuffer);
      if (id !== undefined) return { fr_buffer: id } satisfies BufferRef;
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, ref(v)]));
    }
    return value;
  }

  const kernels = wrapKernels(cpuKernels, (name, fn) => (...args) => {
    stats.dispatches++;
    if (CALLING_THREAD_KERNELS.has(name)) {
      if (disposed) throw new BackendError(`worker cpu backend: kernel ${name} after dispose`);
      drain();
      return fn(...args);
    }
    post({ op: 'kernel', name, args: args.map(ref) });
    return undefined;
  });

  return defineBackend<CpuBuffer>({
    name: 'cpu',
    capabilities: cpuCapabilities(maxBufferSize, 'CPU (TypeScript kernels on a worker thread)'),
    alloc(size, dtype, o = {}) {
      const bytes = size * bytesPerElement(dtype);
      checkAllocation('worker cpu backend', bytes, maxBufferSize, o.label);
      const memory = new SharedArrayBuffer(bytes);
      const b: CpuBuffer = { dtype, data: typedArray(dtype, size, memory), label: o.label ?? '' };
      const id = nextId++;
      post({ op: 'alloc', id, dtype, memory, size, label: b.label });
      ids.set(b, id);
      stats.buffersLive++;
      stats.bytesLive += bytes;
      return b;
    },
    free(b) {
      const id = ids.get(b);
      if (id === undefined || disposed) return;
      ids.delete(b);
      post({ op: 'free', id });
      stats.buffersLive--;
      stats.bytesLive -= b.data.byteLength;
    },
    write(b, data, offset = 0) {
      checkWrite('worker cpu backend', b, data, offset);
      // A copy, in order with the kernels: one posted before may still read the old contents.
      post({ op: 'write', id: ids.get(b)!, data: data.slice(), offset });
      stats.bytesWritten += data.length * bytesPerElement(b.dtype);
    },
    async read(b, _dtype, size) {
      const reply = await request({ op: 'read', id: ids.get(b)!, size, token: nextToken++ });
      const data = (reply as Extract<WorkerReply, { op: 'read' }>).data;
      stats.bytesRead += size * bytesPerElement(b.dtype);
      return b.dtype === 'float16' ? float16ToFloat32Array(data as Uint16Array) : (data as Float32Array | Int32Array);
    },
    kernels,
    async sync() {
      await request({ op: 'sync', token: nextToken++ });
    },
    stats: () => ({ ...stats }),
    dispose() {
      if (disposed) return;
      disposed = true;
      void worker.terminate();
      failures.port1.close();
    },
  });
}
