/**
 * Worker threads sharing the kernels' memory. A task is one kernel export and, per thread, its
 * arguments; the calling thread runs part 0 itself, the workers the others, and the caller returns
 * when all are done. Hand-over is through Atomics on a small shared control block (no messages),
 * so a task costs a wake-up, not a copy.
 */
import { BackendError } from '@fr/core';
import { importNodeBuiltin, isNode } from './runtime.js';

const MAX_ARGS = 32;
/**
 * Milliseconds a thread polls a control word before sleeping on it. Kernels come in bursts, and a
 * futex wake-up costs tens to hundreds of microseconds (more in a virtual machine): a worker woken
 * for a 0.5 ms product would start late and the split would gain little. Workers poll this long
 * after each task, so the next kernel of a step finds them awake.
 */
const SPIN_MS = 0.2;
// Control words: generation, parts done, function index, argument count, failure flag, stop flag, parts.
const GEN = 0, DONE = 1, FN = 2, NARGS = 3, FAILED = 4, STOP = 5, PARTS = 6;

/** The worker's whole program (no imports, so it runs from a string in Node and from a Blob in browsers). */
const workerSource = `
function serve(data, post) {
  const { memory, module, control, args, names, index } = data;
  const instance = new WebAssembly.Instance(module, { env: { memory, abort(m, f, l, c) { throw new Error('kernel aborted at ' + l + ':' + c); } } });
  const ctrl = new Int32Array(control), a = new Float64Array(args);
  const fns = names.map((n) => instance.exports[n]);
  post('ready');
  let gen = 0;
  for (;;) {
    for (const until = performance.now() + ${SPIN_MS}; Atomics.load(ctrl, ${GEN}) === gen && performance.now() < until;);
    Atomics.wait(ctrl, ${GEN}, gen);
    gen = Atomics.load(ctrl, ${GEN});
    if (Atomics.load(ctrl, ${STOP}) === 1) break;
    const parts = ctrl[${PARTS}];
    if (index > parts) continue;
    const base = index * ${MAX_ARGS};
    try { fns[ctrl[${FN}]](...a.subarray(base, base + ctrl[${NARGS}])); } catch (e) { Atomics.store(ctrl, ${FAILED}, 1); }
    if (Atomics.add(ctrl, ${DONE}, 1) + 1 === parts) Atomics.notify(ctrl, ${DONE});
  }
}
`;

interface WorkerHandle {
  terminate(): unknown;
}

export class ThreadPool {
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly workers: WorkerHandle[] = [];
  /** Node's main thread may block in Atomics.wait; a browser's main thread must spin. */
  private readonly canBlock = isNode;

  private constructor(readonly threads: number, private readonly fns: Record<string, (...a: number[]) => unknown>, private readonly names: string[]) {
    this.ctrl = new Int32Array(new SharedArrayBuffer(8 * 4));
    this.args = new Float64Array(new SharedArrayBuffer(threads * MAX_ARGS * 8));
  }

  /** Starts `threads - 1` workers running the kernel module over `memory` (shared). */
  static async start(threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory, exports: Record<string, unknown>): Promise<ThreadPool> {
    const names = Object.keys(exports).filter((n) => typeof exports[n] === 'function');
    const pool = new ThreadPool(threads, exports as Record<string, (...a: number[]) => unknown>, names);
    const ready: Promise<void>[] = [];
    for (let index = 1; index < threads; index++) {
      const data = { memory, module, control: pool.ctrl.buffer, args: pool.args.buffer, names, index };
      ready.push(pool.spawn(data));
    }
    await Promise.all(ready);
    return pool;
  }

  private async spawn(data: object): Promise<void> {
    const isNode = this.canBlock;
    if (isNode) {
      const { Worker } = await importNodeBuiltin<typeof import('node:worker_threads')>('node:worker_threads');
      const w = new Worker(`${workerSource}\nconst { parentPort, workerData } = require('node:worker_threads');\nserve(workerData, (m) => parentPort.postMessage(m));`, { eval: true, workerData: data });
      w.unref();
      this.workers.push(w);
      await new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', (e) => reject(new BackendError(`wasm backend: a worker thread failed to start: ${e.message}`)));
      });
      return;
    }
    const url = URL.createObjectURL(new Blob([`${workerSource}\nonmessage = (e) => serve(e.data, (m) => postMessage(m));`], { type: 'text/javascript' }));
    const w = new Worker(url);
    this.workers.push(w);
    await new Promise<void>((resolve, reject) => {
      w.onmessage = () => resolve();
      w.onerror = (e) => reject(new BackendError(`wasm backend: a web worker failed to start: ${e.message}`));
      w.postMessage(data);
    });
    URL.revokeObjectURL(url);
  }

  /** Runs `name` once per part (parts[t] are its arguments, parts.length <= threads) and waits for all. */
  run(name: string, parts: number[][]): void {
    const fn = this.fns[name];
    if (parts.length === 1) {
      fn(...parts[0]);
      return;
    }
    const ctrl = this.ctrl;
    const others = parts.length - 1;
    const n = parts[0].length;
    for (let t = 1; t < parts.length; t++) this.args.set(parts[t], t * MAX_ARGS);
    // Every worker wakes; those numbered past the parts go back to waiting.
    ctrl[DONE] = 0;
    ctrl[FN] = this.names.indexOf(name);
    ctrl[NARGS] = n;
    ctrl[PARTS] = others;
    Atomics.add(ctrl, GEN, 1);
    Atomics.notify(ctrl, GEN);
    let failure: unknown = null;
    try {
      fn(...parts[0]);
    } catch (e) {
      failure = e;
    }
    for (const until = performance.now() + SPIN_MS; Atomics.load(ctrl, DONE) < others && performance.now() < until;);
    for (let d = Atomics.load(ctrl, DONE); d < others; d = Atomics.load(ctrl, DONE)) {
      if (this.canBlock) Atomics.wait(ctrl, DONE, d);
    }
    if (failure) throw failure;
    if (Atomics.exchange(ctrl, FAILED, 0) === 1) throw new BackendError(`wasm backend: kernel ${name} failed on a worker thread`);
  }

  terminate(): void {
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    for (const w of this.workers) w.terminate();
  }
}
