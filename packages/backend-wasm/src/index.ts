/**
 * @fr/backend-wasm: the CPU at machine speed. Buffers live in one WebAssembly.Memory (shared with
 * worker threads when SharedArrayBuffer is available); matmul and convolutions run 128-bit SIMD
 * kernels split over the threads; the other kernels run the TypeScript reference of
 * @fr/backend-cpu in place on views of the same memory.
 */
export { createWasmBackend, type WasmBackendOptions, type WasmCapabilities } from './backend.js';
export { WasmBuffer } from './runtime.js';
export { measurePeakFlops } from './peak.js';
