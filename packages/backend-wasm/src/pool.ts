/**
 * Worker threads sharing the kernels' memory. A task is one kernel export and a list of parts (its
 * arguments per part, more parts than threads); the calling thread and the workers run parts until
 * none is left, and the caller returns when every part is done. Thread t owns a contiguous run of
 * the parts and claims from it first, then takes parts from the other threads' runs: a thread that
 * is descheduled (a busy machine) or slower simply runs fewer parts. Every part computes its own
 * outputs the same way whoever runs it, so results do not depend on who claimed what. Hand-over
 * is through Atomics on a small shared control block (no messages): a task costs a wake-up, not a copy.
 */
import { BackendError } from '@fr/core';
import { importNodeBuiltin, isNode, MAX_PARTS } from './runtime.js';

const MAX_ARGS = 32;
/**
 * Milliseconds a thread polls a control word before sleeping on it, at least. Kernels come in
 * bursts, and a futex wake-up costs tens to hundreds of microseconds (more in a virtual machine):
 * a worker woken for a 0.5 ms product starts late, and the caller does most of it alone. Workers
 * poll this long after each task, so the next kernel of a step finds them awake even after a
 * millisecond of work on the calling thread alone; the caller polls as long for the last parts of
 * the workers. Measured on a 256^3 product (1 thread 0.86-0.94 ms) with 1.3 ms of other work
 * between products: 0.74 ms at 2 threads with 0.2 ms of polling, 0.54 ms with 2 ms.
 */
const SPIN_MS = 2;
/**
 * A worker polls longer when tasks have lately come at longer intervals, up to this: 1.5 times the
 * longest of its last POLL_GAPS waits that were at most this long. A loop whose kernels come every
 * few milliseconds (a step that does other work between them) then finds the worker awake, where
 * with 2 ms it paid a wake-up per kernel: a 256^3 product on 2 threads (0.53-0.56 ms) took 0.04-0.09
 * ms longer 2.5 ms after the last one than right after it, 0.01 ms with the worker polling. Waits
 * longer than this (an idle page, a frame every 33 ms) leave the poll at SPIN_MS, so an idle
 * worker spends at most that of a core after each task.
 */
const POLL_MAX_MS = 10;
const POLL_GAPS = 8;
/** The worker's polling time (ms) given its last waits for a task (ms), as the worker runs it. */
export const pollMsSource = `
function pollMs(waits) {
  let longest = 0;
  for (let i = 0; i < waits.length; i++) if (waits[i] <= ${POLL_MAX_MS} && waits[i] > longest) longest = waits[i];
  return Math.min(${POLL_MAX_MS}, Math.max(${SPIN_MS}, 1.5 * longest));
}
`;
/**
 * Polls between two reads of the clock. performance.now() returns a boxed number, so a loop reading
 * it every time allocated continuously: a worker waiting for tasks ran a scavenge every 25-30 ms
 * (129 in three 256^3 measurements, 11-12 now), and one that fell as a task came delayed the
 * worker's parts by the scavenge, 0.1-0.2 ms (a 256^3 product on two threads takes 0.45 ms).
 */
const CLOCK_EVERY = 1024;
// Control words: generation, parts done, function index, argument count, failure flag, stop flag,
// parts, whether the last argument is the running thread's scratch block; then one claim word per
// thread ((generation & 0xffff) << 16 | its next part), each on its own cache line.
const GEN = 0, DONE = 1, FN = 2, NARGS = 3, FAILED = 4, STOP = 5, PARTS = 6, SCRATCH = 7;
/** Int32 words per cache line: a thread claiming its own parts does not take the line from the others. */
const LINE = 16;
const CLOSED = 0xffff;

/**
 * Claims and runs parts of generation `gen` until none is left: thread `self`'s own run of parts
 * (the same parts every task of that size, so it finds the data it wrote last time in its cache),
 * then the others'. A claim succeeds only while the claim word still carries this generation, and
 * the caller rewrites the task only after closing every claim word, so a successful claim always
 * reads its own task's words.
 */
const claimSource = `
function claimParts(ctrl, a, fns, gen, self, threads, scratch) {
  const tag = gen & 0xffff;
  let failure = null;
  for (let k = 0; k < threads; k++) {
    const owner = (self + k) % threads, word = ${LINE} * (1 + owner);
    for (;;) {
      const v = Atomics.load(ctrl, word);
      if ((v >>> 16) !== tag) return failure;
      const i = v & 0xffff;
      const parts = Atomics.load(ctrl, ${PARTS});
      // The owner's run ends where the next thread's begins.
      if (i >= Math.floor(((owner + 1) * parts) / threads)) break;
      const fn = fns[Atomics.load(ctrl, ${FN})], nargs = Atomics.load(ctrl, ${NARGS}), withScratch = Atomics.load(ctrl, ${SCRATCH});
      if (Atomics.compareExchange(ctrl, word, v, v + 1) !== v) continue;
      const args = Array.from(a.subarray(i * ${MAX_ARGS}, i * ${MAX_ARGS} + nargs));
      if (withScratch) args[nargs - 1] = scratch;
      // A failed part still counts as done (the caller waits for all); the first failure is kept.
      try { fn(...args); } catch (e) { failure = failure || e; Atomics.store(ctrl, ${FAILED}, 1); }
      if (Atomics.add(ctrl, ${DONE}, 1) + 1 === parts) Atomics.notify(ctrl, ${DONE});
    }
  }
  return failure;
}
`;

/** The worker's whole program (no imports, so it runs from a string in Node and from a Blob in browsers). */
const workerSource = `${claimSource}${pollMsSource}
function serve(data, post) {
  const { memory, module, control, args, names, scratch, index, threads } = data;
  const instance = new WebAssembly.Instance(module, { env: { memory, abort(m, f, l, c) { throw new Error('kernel aborted at ' + l + ':' + c); } } });
  const ctrl = new Int32Array(control), a = new Float64Array(args);
  const fns = names.map((n) => instance.exports[n]);
  post('ready');
  let gen = 0, poll = ${SPIN_MS}, w = 0;
  const waits = new Float64Array(${POLL_GAPS});
  for (;;) {
    const idle = performance.now();
    for (let spin = 0, until = idle + poll; Atomics.load(ctrl, ${GEN}) === gen; spin++) {
      if ((spin & ${CLOCK_EVERY - 1}) === 0 && performance.now() >= until) break;
    }
    Atomics.wait(ctrl, ${GEN}, gen);
    gen = Atomics.load(ctrl, ${GEN});
    waits[w++ % ${POLL_GAPS}] = performance.now() - idle;
    poll = pollMs(waits);
    if (Atomics.load(ctrl, ${STOP}) === 1) break;
    claimParts(ctrl, a, fns, gen, index, threads, scratch);
  }
}
`;

/** claimSource for the calling thread, thread 0 (pages may forbid eval, so it is written out twice). */
function claimParts(ctrl: Int32Array, a: Float64Array, fns: ((...x: number[]) => unknown)[], gen: number, threads: number, scratch: number): unknown {
  const tag = gen & 0xffff;
  let failure: unknown = null;
  for (let owner = 0; owner < threads; owner++) {
    const word = LINE * (1 + owner);
    for (;;) {
      const v = Atomics.load(ctrl, word);
      if (v >>> 16 !== tag) return failure;
      const i = v & 0xffff;
      const parts = Atomics.load(ctrl, PARTS);
      if (i >= Math.floor(((owner + 1) * parts) / threads)) break;
      const fn = fns[Atomics.load(ctrl, FN)], nargs = Atomics.load(ctrl, NARGS), withScratch = Atomics.load(ctrl, SCRATCH);
      if (Atomics.compareExchange(ctrl, word, v, v + 1) !== v) continue;
      const args = Array.from(a.subarray(i * MAX_ARGS, i * MAX_ARGS + nargs));
      if (withScratch) args[nargs - 1] = scratch;
      // A failed part still counts as done (the caller waits for all); the first failure is kept.
      try {
        fn(...args);
      } catch (e) {
        failure ??= e;
        Atomics.store(ctrl, FAILED, 1);
      }
      if (Atomics.add(ctrl, DONE, 1) + 1 === parts) Atomics.notify(ctrl, DONE);
    }
  }
  return failure;
}

interface WorkerHandle {
  terminate(): unknown;
}

export class ThreadPool {
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly workers: WorkerHandle[] = [];
  private readonly fnList: ((...a: number[]) => unknown)[];
  /** Node's main thread may block in Atomics.wait; a browser's main thread must spin. */
  private readonly canBlock = isNode;

  private constructor(readonly threads: number, private readonly fns: Record<string, (...a: number[]) => unknown>, private readonly names: string[], private readonly scratch: number[]) {
    this.ctrl = new Int32Array(new SharedArrayBuffer(LINE * (1 + threads) * 4));
    this.args = new Float64Array(new SharedArrayBuffer(MAX_PARTS * MAX_ARGS * 8));
    this.fnList = names.map((n) => fns[n]);
  }

  /** Starts `threads - 1` workers running the kernel module over `memory` (shared); thread t owns `scratch[t]`. */
  static async start(threads: number, module: WebAssembly.Module, memory: WebAssembly.Memory, exports: Record<string, unknown>, scratch: number[]): Promise<ThreadPool> {
    const names = Object.keys(exports).filter((n) => typeof exports[n] === 'function');
    const pool = new ThreadPool(threads, exports as Record<string, (...a: number[]) => unknown>, names, scratch);
    const ready: Promise<void>[] = [];
    for (let index = 1; index < threads; index++) {
      const data = { memory, module, control: pool.ctrl.buffer, args: pool.args.buffer, names, scratch: scratch[index], index, threads };
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

  /**
   * Runs `name` once per part (parts[i] are its arguments; with `withScratch` the last one is
   * replaced by the running thread's scratch block) and waits for all.
   */
  run(name: string, parts: number[][], withScratch = false): void {
    const fn = this.fns[name];
    if (parts.length > MAX_PARTS) throw new BackendError(`wasm backend: ${parts.length} parts of ${name}, over ${MAX_PARTS}`);
    if (parts.length === 1) {
      const only = parts[0].slice();
      if (withScratch) only[only.length - 1] = this.scratch[0];
      fn(...only);
      return;
    }
    const ctrl = this.ctrl;
    const gen = (Atomics.load(ctrl, GEN) + 1) | 0;
    const threads = this.threads;
    // Close every claim word (tagged with the previous generation) before the task's words change (see claimParts).
    const closed = (((gen - 1) & 0xffff) << 16) | CLOSED;
    for (let t = 0; t < threads; t++) Atomics.store(ctrl, LINE * (1 + t), closed);
    for (let t = 0; t < parts.length; t++) this.args.set(parts[t], t * MAX_ARGS);
    Atomics.store(ctrl, DONE, 0);
    Atomics.store(ctrl, FN, this.names.indexOf(name));
    Atomics.store(ctrl, NARGS, parts[0].length);
    Atomics.store(ctrl, PARTS, parts.length);
    Atomics.store(ctrl, SCRATCH, withScratch ? 1 : 0);
    // Thread t's run of parts starts at floor(t * parts / threads).
    for (let t = 0; t < threads; t++) Atomics.store(ctrl, LINE * (1 + t), ((gen & 0xffff) << 16) | Math.floor((t * parts.length) / threads));
    Atomics.store(ctrl, GEN, gen);
    Atomics.notify(ctrl, GEN);
    const failure = claimParts(ctrl, this.args, this.fnList, gen, threads, this.scratch[0]);
    const total = parts.length;
    for (let spin = 0, until = performance.now() + SPIN_MS; Atomics.load(ctrl, DONE) < total; spin++) {
      if ((spin & (CLOCK_EVERY - 1)) === 0 && performance.now() >= until) break;
    }
    for (let d = Atomics.load(ctrl, DONE); d < total; d = Atomics.load(ctrl, DONE)) {
      if (this.canBlock) Atomics.wait(ctrl, DONE, d);
    }
    const workerFailed = Atomics.exchange(ctrl, FAILED, 0) === 1;
    if (failure) throw failure;
    if (workerFailed) throw new BackendError(`wasm backend: kernel ${name} failed on a worker thread`);
  }

  terminate(): void {
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    for (const w of this.workers) w.terminate();
  }
}
