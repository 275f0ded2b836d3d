import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Heap } from './heap.js';
import { kernelBytes, kernelImports, type KernelExports } from './module.js';
import { pollMsSource, ThreadPool } from './pool.js';
import { splitInto } from './runtime.js';

const THREADS = 3;
let memory: WebAssembly.Memory;
let heap: Heap;
let pool: ThreadPool;
beforeAll(async () => {
  memory = new WebAssembly.Memory({ initial: 256, maximum: 4096, shared: true });
  heap = new Heap(memory, 4096 * 65536);
  const module = await WebAssembly.compile(kernelBytes(true) as BufferSource);
  const exports = (await WebAssembly.instantiate(module, kernelImports(memory))).exports as unknown as KernelExports;
  const scratch = Array.from({ length: THREADS }, () => heap.alloc(exports.matmulScratchBytes(), 'scratch').ptr);
  pool = await ThreadPool.start(THREADS, module, memory, exports, scratch);
});
afterAll(() => pool.terminate());

const ADD = 0;

describe('ThreadPool', () => {
  // a += b in place, one part per range: a part run twice adds b twice, a part skipped not at all.
  // 2 parts on 3 threads: a thread with no run of its own only takes the others' parts.
  test.each([2, 3, 4, 7, 64, 256])('runs each of %i parts exactly once, whoever claims them', (parts) => {
    const n = 4096;
    const a = heap.alloc(n * 4, 'a').ptr, b = heap.alloc(n * 4, 'b').ptr;
    const av = new Float32Array(memory.buffer, a, n), bv = new Float32Array(memory.buffer, b, n);
    av.fill(1);
    bv.forEach((_, i) => (bv[i] = i));
    // Tasks in a row: the claim words of one task must not leak into the next.
    for (let round = 0; round < 20; round++) {
      pool.run('binary', splitInto(n, parts, 4).map(([i0, i1]) => [ADD, a, b, a, i0, i1]));
    }
    const want = Float32Array.from(bv, (x) => 1 + 20 * x);
    expect(Array.from(av)).toEqual(Array.from(want));
  });

  // The worker runs this from its source text; so does the test.
  const pollMs = new Function(`${pollMsSource}\nreturn pollMs;`)() as (waits: Float64Array) => number;
  test('a worker polls 1.5 times its longest recent wait for a task, from 2 to 10 ms; longer waits do not count', () => {
    expect(pollMs(new Float64Array(8))).toBe(2);
    expect(pollMs(Float64Array.of(0.1, 3, 0.2, 1))).toBe(4.5);
    expect(pollMs(Float64Array.of(0.1, 9))).toBe(10);
    expect(pollMs(Float64Array.of(33, 0.5, 12))).toBe(2);
  });
});
