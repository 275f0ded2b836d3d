/** @fr/backend-cpu/node: the CPU backend on a worker thread (Node's worker_threads). */
export * from './index.js';
export { createWorkerCpuBackend } from './worker.js';
