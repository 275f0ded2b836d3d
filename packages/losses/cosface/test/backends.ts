/**
 * Backends every test of this package runs on. The CPU backend is the reference; the WebGPU
 * backend joins the list once it exists (see the package README).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createCpuBackend } from '@fr/backend-cpu';
import type { Backend } from '@fr/core';
import { parseLossCase, type LossCase } from '@fr/core/testing';

export interface TestBackend {
  name: string;
  create(): Promise<Backend> | Backend;
}

export const backends: TestBackend[] = [{ name: 'cpu', create: () => createCpuBackend() }];

/** The golden cases copied into test/fixtures, validated. */
export function fixtures(prefix = ''): LossCase[] {
  const dir = new URL('./fixtures/', import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f.startsWith(prefix))
    .sort()
    .map((f) => parseLossCase(readFileSync(new URL(f, dir), 'utf8'), f));
}
