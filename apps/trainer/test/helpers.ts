/** What the reliability tests share: temporary folders, the tiny run, and a way to run `fr`. */
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCpuBackend } from '@fr/backend-cpu';
import { defaultPlugins, type TrainConfig, type TrainOptions } from '../src/index.js';
import { tinyTrainConfig } from './tiny-config.js';

export const plugins = defaultPlugins;
export const silent = () => {};
export const tmp = () => mkdtemp(join(tmpdir(), 'fr-reliability-'));

/** 12 identities of 16x16 synthetic faces, a 20-identity held-out set; 6 steps of 8. */
export function tinyConfig(output: string, overrides: Record<string, unknown> = {}): TrainConfig {
  return tinyTrainConfig(output, 3, {
    train: { name: 'synthetic', identities: 12, imagesPerIdentity: 4, size: 16 },
    eval: [{ name: 'synthetic', label: 'tiny-pairs', testIdentities: 20, imagesPerIdentity: 4, pairsPerFold: 5, size: 16 }],
  }, overrides);
}

export function cpuOptions(extra: Partial<TrainOptions> = {}): TrainOptions {
  return { plugins, backend: createCpuBackend(), backendReason: 'cpu', print: silent, ...extra };
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `fr` as a user would (from the repository root); `onStderr` sees its error output as it
 * comes and may signal the child.
 */
export function runCli(args: readonly string[], o: { onStderr?: (text: string, child: ReturnType<typeof spawn>) => void; env?: Record<string, string> } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--conditions=@fr/source', '--import', 'tsx', 'apps/trainer/src/cli.ts', ...args], {
      cwd: root,
      env: { ...process.env, FR_DEBUG: '', ...o.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      o.onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
