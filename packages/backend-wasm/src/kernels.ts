import { cpuKernels } from '@fr/backend-cpu';
import type { KernelName, KernelTable } from '@fr/core';
import { convKernels } from './conv.js';
import { elementwiseKernels } from './elementwise.js';
import { layerKernels } from './layers.js';
import { marginKernels } from './margin-loss.js';
import { matmul } from './matmul.js';
import { optimKernels } from './optim.js';
import { requireFloat32, view, WasmBuffer, type Runtime } from './runtime.js';

/** The kernels with a WebAssembly SIMD implementation; the others run the TypeScript reference. */
export function simdKernels(rt: Runtime): Partial<KernelTable<WasmBuffer>> {
  return {
    matmul(a, b, out, p) {
      if (!p.halfA) requireFloat32(a, 'matmul');
      if (!p.halfB) requireFloat32(b, 'matmul');
      if (!p.halfC) requireFloat32(out, 'matmul');
      matmul(rt, a, b, out, p);
    },
    ...convKernels(rt),
    ...layerKernels(rt),
    ...elementwiseKernels(rt),
    ...marginKernels(rt, onViews(rt, 'marginLoss')),
    ...optimKernels(rt),
  };
}

/** Replaces wasm buffers (also inside a parameter object) by typed-array views of the same memory. */
function toViews(rt: Runtime, value: unknown): unknown {
  if (value instanceof WasmBuffer) return view(rt, value);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const o = value as Record<string, unknown>;
    let copy: Record<string, unknown> | null = null;
    for (const key in o) {
      if (o[key] instanceof WasmBuffer) (copy ??= { ...o })[key] = view(rt, o[key] as WasmBuffer);
    }
    return copy ?? value;
  }
  return value;
}

/** The TypeScript reference kernel `name`, run in place on views of the memory (nothing is copied). */
function onViews<K extends KernelName>(rt: Runtime, name: K): KernelTable<WasmBuffer>[K] {
  const kernel = cpuKernels[name] as (...args: unknown[]) => void;
  return ((...args: unknown[]) => kernel(...args.map((a) => toViews(rt, a)))) as unknown as KernelTable<WasmBuffer>[K];
}

/** The whole table: SIMD kernels where `simd`, the reference on views elsewhere. */
export function kernelTable(rt: Runtime, simd: boolean): KernelTable<WasmBuffer> {
  const fast = simd ? simdKernels(rt) : {};
  const table = {} as Record<KernelName, unknown>;
  for (const name of Object.keys(cpuKernels) as KernelName[]) table[name] = fast[name] ?? onViews(rt, name);
  return table as unknown as KernelTable<WasmBuffer>;
}
