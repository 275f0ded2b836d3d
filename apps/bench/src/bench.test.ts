/**
 * The benchmarks on tiny shapes: their rows have the documented structure, and both sides of each
 * comparison compute the same loss (timings are not asserted: they depend on the machine).
 * WebGPU runs on whatever Dawn finds (SwiftShader via tooling/test-env.sh).
 */
import { describe, expect, it } from 'vitest';
import { run as runActivations } from './activations.bench.js';
import { run as runBackbone } from './backbone.bench.js';
import { disagree, HEAD_AGREEMENT, printHeadTables, run as runHead } from './head.bench.js';
import { profileHeadStep, profileStep } from './kernel-profile.js';
import { run as runMlp } from './mlp.bench.js';
import { benchPlan, BENCHES } from './plan.js';
import { timeSteps } from './common.js';

const silent = () => {};
const once = { budgetMs: 0, minReps: 0, maxReps: 0, warmupMs: 0 };

describe('loss head bench', () => {
  it('ours and tfjs agree on the loss and d loss / dx, on the CPU, WebGPU and wasm', async () => {
    const lines: string[] = [];
    const rows = await runHead({ devices: ['webgpu', 'cpu', 'wasm'], classes: [300], batch: 8, dim: 32, policy: once, log: (l) => lines.push(l) });
    expect(rows.map((r) => `${r.device}/${r.loss}`)).toEqual(['webgpu/arcface', 'webgpu/sphereface2', 'cpu/arcface', 'cpu/sphereface2', 'wasm/arcface', 'wasm/sphereface2']);
    expect(lines.join('\n')).not.toContain('MISMATCH');
    for (const r of rows) {
      expect(r.oursMeasured && r.tfjsMeasured).toBe(true);
      expect(r.oursMs).toBeGreaterThan(0);
      expect(r.tfjsMs).toBeGreaterThan(0);
      expect(r.ratio).toBeCloseTo(r.tfjsMs / r.oursMs, 6);
      expect(Number.isFinite(r.oursLoss)).toBe(true);
      expect(r.lossRelDiff).toBeLessThan(HEAD_AGREEMENT.loss);
      expect(r.gradXRelError).toBeLessThan(HEAD_AGREEMENT.gradX);
      // Four matmul-sized passes at least; the fused head stays within a small multiple of the minimum.
      expect(r.minimumBytes).toBe(4 * (8 * 300 + 300 * 32 + 8 * 32));
      expect(r.ours.uncounted).toEqual([]);
      expect(r.ours.read + r.ours.written).toBeGreaterThan(r.minimumBytes);
      expect(r.tfjs.kernels).toBeGreaterThan(r.ours.kernels);
      expect(r.oursHostBytes).toBe(8 * 4 + 4); // labels up, loss down
    }
  });

  it('marks a row whose two sides disagree', async () => {
    const [row] = await runHead({ devices: ['cpu'], losses: ['arcface'], classes: [100], batch: 4, dim: 8, policy: once, log: silent });
    expect(disagree(row)).toBe(false);
    const wrong = { ...row, tfjsLoss: 1.8e-44, lossRelDiff: 1 };
    expect(disagree(wrong)).toBe(true);
    const lines: string[] = [];
    printHeadTables([row, wrong], (l) => lines.push(l));
    expect(lines.filter((l) => l.includes('MISMATCH'))).toHaveLength(1);
  });

  it('extrapolates a side predicted over the cap instead of running it', async () => {
    const rows = await runHead({
      devices: ['cpu'], losses: ['arcface'], classes: [100, 100_000], batch: 4, dim: 8, policy: once, large: once, maxStepMs: 1e-6, log: silent,
    });
    expect(rows).toHaveLength(2);
    expect(rows[0].oursMeasured).toBe(true);
    expect(rows[1].oursMeasured).toBe(false);
    expect(rows[1].tfjsMeasured).toBe(false);
    expect(rows[1].oursMs).toBeCloseTo(rows[0].oursMs * 1000, 3);
  });
});

describe('backbone bench', () => {
  it('a side over the cap is predicted from a second probe at twice the side (the first compiles), linearly in batch x pixels', async () => {
    const [r] = await runBackbone({ devices: ['cpu'], archs: ['smallnet'], batch: 4, inputSize: { smallnet: 64 }, policy: once, log: silent, maxStepMs: 0, probe: { batch: 2, size: 16 } });
    expect(r.probe!.shape).toBe('2x3x32x32');
    expect(r.oursMeasured).toBe(false);
    expect(r.tfjsMeasured).toBe(false);
    expect(r.oursMs).toBeCloseTo(r.probe!.oursMs * ((4 * 64 * 64) / (2 * 32 * 32)), 6);
    expect(r.checkShape).toBe('2x3x32x32');
  });

  it('ours and the tfjs network compute the same loss from the same weights on the CPU', async () => {
    const rows = await runBackbone({ devices: ['cpu'], batch: 2, inputSize: { smallnet: 16, mobilefacenet: 16 }, policy: once, log: silent });
    expect(rows.map((r) => r.arch)).toEqual(['smallnet', 'mobilefacenet']);
    for (const r of rows) {
      expect(r.checkShape).toBe('2x3x16x16');
      expect(r.lossRelDiff).toBeLessThan(1e-3);
      expect(r.oursImagesPerSecond).toBeCloseTo(2000 / r.oursMs, 6);
      expect(r.ours.rss).toBeGreaterThan(0);
      expect(r.ours.deviceBytes).toBeGreaterThan(0);
      expect(r.tfjs.deviceBytes).toBeGreaterThan(0);
    }
  });

  it('smallnet on WebGPU matches tfjs-backend-webgpu', async () => {
    const [r] = await runBackbone({ devices: ['webgpu'], archs: ['smallnet'], batch: 2, inputSize: { smallnet: 16 }, policy: once, log: silent });
    expect(r.device).toBe('webgpu');
    expect(r.lossRelDiff).toBeLessThan(1e-3);
    expect(r.ours.deviceBytes).toBeGreaterThan(0);
    expect(r.tfjs.deviceBytes).toBeGreaterThan(0);
  }, 600_000);
});

describe('activation storage bench', () => {
  it('float16 storage holds about half the forward\'s bytes on both devices, with an input gradient close to float32\'s', async () => {
    const lines: string[] = [];
    const rows = await runActivations({
      archs: ['smallnet'], batch: { smallnet: 4 }, inputSize: { smallnet: 32 }, policy: once, log: (l) => void lines.push(l),
    });
    expect(rows.map((r) => `${r.device}/${r.arch}/${r.shape}`)).toEqual(['webgpu/smallnet/4x3x32x32', 'cpu/smallnet/4x3x32x32']);
    for (const r of rows) {
      // The input batch and the embeddings stay float32.
      expect(r.float16Bytes / r.float32Bytes).toBeGreaterThan(0.5);
      expect(r.float16Bytes / r.float32Bytes).toBeLessThan(0.6);
      expect(r.inputGradRelError).toBeGreaterThan(0);
      expect(r.inputGradRelError).toBeLessThan(1e-2);
      expect(r.float32Ms).toBeGreaterThan(0);
    }
    expect(rows[0].float16Bytes).toBe(rows[1].float16Bytes);
    expect(lines[0]).toContain('bytes f16/f32');
  }, 300_000);
});

describe('bench plan', () => {
  it('quick mode shrinks every shape and skips the fixed-shape scale bench', () => {
    const quick = benchPlan(true), full = benchPlan(false);
    expect(BENCHES).toEqual(['matmul', 'mlp', 'head', 'backbone', 'activations', 'scale', 'cpu']);
    expect(quick.scale).toBeNull();
    expect(Math.max(...quick.head.classes!)).toBeLessThan(10_000);
    expect(quick.backbone.batch).toBeLessThan(32);
    expect(full.scale).not.toBeNull();
    expect(full.explanation.length).toBeGreaterThan(0);
    // Every backbone runs on every device (MobileFaceNet on WebGPU included).
    expect(full.backbone.skip ?? []).toEqual([]);
  });
});

describe('MLP example bench', () => {
  it('counts one step\'s dispatches and bytes the same way on both devices, with the same loss', async () => {
    const shape = { batch: 8, input: 16, hidden: 16, embedding: 8, classes: 20 };
    const rows = await runMlp({ shape, policy: once, log: silent });
    expect(rows.map((r) => r.device)).toEqual(['webgpu', 'cpu']);
    const [gpu, cpu] = rows;
    // The same kernels run on both backends; WebGPU adds no host traffic of its own.
    expect(gpu.dispatches).toBeGreaterThan(20);
    expect(gpu.kernels.kernels).toBe(cpu.kernels.kernels);
    expect(gpu.kernels.read).toBe(cpu.kernels.read);
    expect(gpu.kernels.uncounted).toEqual([]);
    // Up: the input batch and the labels; down: the 4-byte loss.
    expect(cpu.hostBytesWritten).toBe(4 * (8 * 16 + 8));
    expect(gpu.hostBytesWritten).toBe(cpu.hostBytesWritten);
    expect(gpu.hostBytesRead).toBe(4);
    expect(gpu.submits).toBeGreaterThan(0);
    expect(cpu.submits).toBeNull();
    expect(Math.abs(gpu.loss - cpu.loss) / cpu.loss).toBeLessThan(1e-3);
  });
});

describe('kernel profile', () => {
  it('times every kernel of a smallnet step and splits the time into shares', async () => {
    const { createCpuBackend } = await import('@fr/backend-cpu');
    const backend = createCpuBackend();
    const rows = await profileStep(backend, 'smallnet', 2);
    const names = rows.map((r) => r.kernel);
    expect(names).toContain('conv2d 3x3 dense stride 2');
    expect(names).toContain('conv2dBackwardWeight 3x3 dense stride 2');
    expect(names).toContain('batchNormBackward');
    expect(rows.reduce((a, r) => a + r.share, 0)).toBeCloseTo(1, 6);
    for (const r of rows) expect(r.calls).toBeGreaterThan(0);
    // Sorted by time, largest first.
    for (let i = 1; i < rows.length; i++) expect(rows[i].ms).toBeLessThanOrEqual(rows[i - 1].ms);
    expect(backend.stats().buffersLive).toBe(0);
  });
  it('times the kernels of an ArcFace head step (small shape) and frees what it made', async () => {
    const { createCpuBackend } = await import('@fr/backend-cpu');
    const backend = createCpuBackend();
    const rows = await profileHeadStep(backend, 4, 16, 50);
    const names = rows.map((r) => r.kernel);
    for (const k of ['matmul', 'marginLoss', 'l2normalizeRows', 'l2normalizeRowsBackward']) expect(names).toContain(k);
    expect(rows.find((r) => r.kernel === 'matmul')!.calls).toBe(3);
    expect(rows.reduce((a, r) => a + r.share, 0)).toBeCloseTo(1, 6);
    expect(backend.stats().buffersLive).toBe(0);
  });
});

describe('timeSteps', () => {
  it('warms up for the policy time (a 0 ms warm-up is one step), then times the budget from the last warm-up step', async () => {
    let calls = 0;
    const step = async () => {
      calls++;
      const until = performance.now() + 2;
      while (performance.now() < until);
    };
    const t = await timeSteps(step, { budgetMs: 20, minReps: 1, maxReps: 100, warmupMs: 50 });
    expect(calls - t.reps).toBeGreaterThanOrEqual(5);
    expect(calls - t.reps).toBeLessThanOrEqual(30);
    expect(t.reps).toBeGreaterThanOrEqual(5);
    expect(t.reps).toBeLessThanOrEqual(10);
    calls = 0;
    const once = await timeSteps(step, { budgetMs: 0, minReps: 0, maxReps: 0, warmupMs: 0 });
    expect([calls, once.reps]).toEqual([1, 0]);
    expect(once.ms).toBe(once.warmupMs);
  });
});
