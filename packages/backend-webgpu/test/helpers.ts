/** Test helpers: a shared Dawn backend, seeded inputs, and CPU-vs-GPU parity of one kernel call. */
import { createCpuBackend } from '@fr/backend-cpu';
import { createRng, type Backend, type KernelTable } from '@fr/core';
import { expectClose as expectCloseRule } from '@fr/core/testing';
import { createNodeWebGpuBackend, type WebGpuBackend } from '../src/node.js';

const shared = new Map<string, Promise<WebGpuBackend>>();

/**
 * One backend per test file and matmul form (SwiftShader compiles are slow; pipelines are reused).
 * Without a form, the adapter's defaults (direct matmul, thread-per-row reductions on SwiftShader);
 * 'tiled' also takes the hardware row reductions, so that it runs what a GPU would.
 */
export function gpu(matmul?: 'tiled' | 'direct'): Promise<WebGpuBackend> {
  const key = matmul ?? 'default';
  let backend = shared.get(key);
  if (!backend) {
    backend = createNodeWebGpuBackend({ destroyDeviceOnDispose: false, matmul, rowReduction: matmul === 'tiled' ? 'workgroup' : undefined });
    shared.set(key, backend);
  }
  return backend;
}

export function randomF32(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng.uniform();
  return out;
}

export function randomInt(seed: number, n: number, max: number): Int32Array {
  const rng = createRng(seed);
  return Int32Array.from({ length: n }, () => rng.int(max));
}

type Host = Float32Array | Int32Array;

export interface ParityCase {
  /** Buffers uploaded before the call (inputs, and outputs whose old contents matter). */
  buffers: Record<string, Host>;
  /** Buffers to read back and compare after the call. */
  compare: string[];
  call<B>(k: KernelTable<B>, b: Record<string, B>): void;
}

export async function runCase<B>(backend: Backend<B>, c: ParityCase): Promise<Record<string, Host>> {
  const bufs: Record<string, B> = {};
  for (const [name, data] of Object.entries(c.buffers)) {
    const dtype = data instanceof Int32Array ? 'int32' : 'float32';
    bufs[name] = backend.alloc(data.length, dtype, { label: name });
    backend.write(bufs[name], data);
  }
  c.call(backend.kernels, bufs);
  const out: Record<string, Host> = {};
  for (const name of c.compare) {
    const d = c.buffers[name];
    out[name] = await backend.read(bufs[name], d instanceof Int32Array ? 'int32' : 'float32', d.length);
  }
  for (const b of Object.values(bufs)) backend.free(b);
  return out;
}

export interface Tolerance {
  atol?: number;
  rtol?: number;
}

/** The kit's rule, held per element (|got - want| <= atol + rtol |want[i]|): a kernel must match the CPU everywhere. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance = {}, what = ''): void {
  expectCloseRule(got, want, { atol: tol.atol ?? 1e-5, rtol: tol.rtol ?? 1e-5, relativeTo: 'element' }, what);
}

const cpu = createCpuBackend();

/** Runs a case on the CPU reference and on the GPU and compares every listed output. */
export async function parity(c: ParityCase, tol: Tolerance = {}, label = '', subject?: Promise<WebGpuBackend>): Promise<Record<string, Host>> {
  const want = await runCase(cpu, c);
  const got = await runCase(await (subject ?? gpu()), c);
  for (const name of c.compare) expectClose(got[name], want[name], tol, `${label} ${name}`);
  return got;
}
