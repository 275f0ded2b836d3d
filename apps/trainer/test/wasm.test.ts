import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { tinyTrainConfig } from './tiny-config.js';
import { defaultPlugins, selectBackend, train } from '../src/index.js';

const silent = () => {};
const data = {
  train: { name: 'synthetic', identities: 12, imagesPerIdentity: 4, size: 16 },
  eval: [{ name: 'synthetic', label: 'tiny-pairs', testIdentities: 20, imagesPerIdentity: 4, pairsPerFold: 5, size: 16 }],
};

describe('the wasm backend in fr train', () => {
  test('--backend wasm trains as the cpu backend does (same losses to float32 rounding)', async () => {
    const selected = await selectBackend('wasm');
    expect(selected.backend.name).toBe('wasm');
    expect(selected.reason).toMatch(/^wasm \(as configured\): CPU \(WebAssembly SIMD, \d+ threads?\)/);
    const wasm = await train(tinyTrainConfig(await mkdtemp(join(tmpdir(), 'fr-wasm-')), 5, data), { plugins: defaultPlugins, backend: selected.backend, backendReason: selected.reason, print: silent });
    const cpu = await train(tinyTrainConfig(await mkdtemp(join(tmpdir(), 'fr-wasm-')), 5, data), { plugins: defaultPlugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent });
    expect(wasm.losses).toHaveLength(6);
    wasm.losses.forEach((l, i) => expect(Math.abs(l.loss - cpu.losses[i].loss) / cpu.losses[i].loss).toBeLessThan(1e-3));
    selected.backend.dispose();
  });

  test('auto takes wasm on a machine whose only WebGPU adapter is software (or none)', async () => {
    const selected = await selectBackend('auto');
    if (selected.backend.capabilities.hardware) {
      // A hardware adapter wins; the wasm fallback then is not reachable here.
      expect(selected.backend.name).toBe('webgpu');
    } else {
      expect(selected.backend.name).toBe('wasm');
      expect(selected.reason).toMatch(/^wasm \(auto: (only a software adapter|no WebGPU adapter)/);
    }
    selected.backend.dispose();
  });
});
