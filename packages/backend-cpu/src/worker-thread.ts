/**
 * The worker thread of the worker CPU backend: the CPU kernels over buffers shared with the main
 * thread. The first message that throws is kept: later reads and syncs report it.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { storeHost, typedArray, type CpuBuffer } from './buffer.js';
import { cpuKernels } from './index.js';
import { DONE, FAILED, type WorkerMessage, type WorkerReply } from './worker-protocol.js';

const control = new Int32Array(workerData.control as SharedArrayBuffer);
/** Where the first failure is told, for a calling thread that cannot wait for a reply (see worker.ts). */
const failures = workerData.failures as MessagePort;
const buffers = new Map<number, CpuBuffer>();
let failure: string | null = null;

/** Replaces buffer references in kernel arguments (also inside parameter objects) by the buffers. */
function resolve(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(resolve);
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    if ('fr_buffer' in value) {
      const b = buffers.get((value as { fr_buffer: number }).fr_buffer);
      if (!b) throw new Error(`worker cpu backend: buffer ${(value as { fr_buffer: number }).fr_buffer} is not allocated (freed already?)`);
      return b;
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  }
  return value;
}

function run(msg: WorkerMessage): WorkerReply | null {
  switch (msg.op) {
    case 'alloc':
      buffers.set(msg.id, { dtype: msg.dtype, data: typedArray(msg.dtype, msg.size, msg.memory), label: msg.label });
      return null;
    case 'free':
      buffers.delete(msg.id);
      return null;
    case 'write':
      storeHost(resolve({ fr_buffer: msg.id }) as CpuBuffer, msg.data, msg.offset);
      return null;
    case 'kernel': {
      const fn = (cpuKernels as unknown as Record<string, (...a: unknown[]) => void>)[msg.name];
      fn(...(msg.args.map(resolve)));
      return null;
    }
    case 'read': {
      if (failure) return { op: 'failed', token: msg.token, message: failure };
      const b = resolve({ fr_buffer: msg.id }) as CpuBuffer;
      return { op: 'read', token: msg.token, data: b.data.slice(0, msg.size) };
    }
    case 'sync':
      return failure ? { op: 'failed', token: msg.token, message: failure } : { op: 'sync', token: msg.token };
  }
}

parentPort!.on('message', (msg: WorkerMessage) => {
  let reply: WorkerReply | null = null;
  try {
    reply = run(msg);
  } catch (e) {
    if (!failure) {
      failure = `${msg.op === 'kernel' ? `kernel ${msg.name}` : msg.op}: ${(e as Error).message}`;
      failures.postMessage({ message: failure });
    }
    Atomics.store(control, FAILED, 1);
    if (msg.op === 'read' || msg.op === 'sync') reply = { op: 'failed', token: msg.token, message: failure };
  } finally {
    Atomics.add(control, DONE, 1);
    Atomics.notify(control, DONE);
  }
  if (reply) parentPort!.postMessage(reply, reply.op === 'read' ? [reply.data.buffer as ArrayBuffer] : []);
});
