/**
 * Memory accounting of a run, before anything of the training is allocated: bytes per tensor group
 * from @fr/scale's `planMemory` (backbone, class weights, optimizer state, activations, loss head,
 * head workspace), checked against the device's limits. A run that cannot fit is refused with the
 * `head.sampleRate` that would make it fit.
 */
import { totalmem } from 'node:os';
import { createRng, tensor, tidy, type Backend } from '@fr/core';
import {
  assertFits, deviceLimits, formatBytes, MemoryPlanError,
  type DeviceLimits, type MemoryConfig, type MemoryGroups, type MemoryPlan, type OptimizerKind,
} from '@fr/scale';
import type { TrainConfig } from './config.js';
import { partialFcProblem } from './partial-fc.js';
import type { Plugins } from './plugins.js';

/** Batch of the dry forward that measures activations. */
export const ACTIVATION_PROBE_BATCH = 2;

export interface BackboneFootprint {
  /** Scalars of the backbone's parameters. */
  parameters: number;
  /** Bytes the backbone keeps alive for the backward pass at the config's batch (measured, scaled). */
  activationBytes: number;
  /** Bytes measured at the probe batch. */
  probeBytes: number;
  probeBatch: number;
}

/**
 * Measures the backbone: a throwaway copy (its own generator, disposed after) runs one forward in
 * training mode at `probeBatch` images, and the growth of the backend's live bytes at the end of
 * that forward (input included, every tensor the tape keeps for backward still alive) is the
 * activation memory of `probeBatch` images. Activations grow linearly with the batch, so the
 * figure is scaled by batchSize / probeBatch. The run's own model is not touched (batch-norm
 * statistics, generators), so a run with the measurement trains exactly as one without it.
 */
export function measureBackbone(config: TrainConfig, plugins: Plugins, backend: Backend, probeBatch = ACTIVATION_PROBE_BATCH): BackboneFootprint {
  const plugin = plugins.backbones.find((b) => b.name === config.backbone.name)!;
  const { name: _n, ...raw } = config.backbone;
  const params = plugin.params.parse(raw);
  const module = plugin.build({ backend, params, rng: createRng(config.seed) });
  try {
    const parameters = module.parameters.reduce((n, p) => n + p.tensor.size, 0);
    const [c, h, w] = plugin.inputShape(params);
    const before = backend.stats().bytesLive;
    let after = before;
    tidy(() => {
      const x = tensor(backend, new Float32Array(probeBatch * c * h * w), [probeBatch, c, h, w], { name: 'memory probe' });
      module.forward(x, { training: true, seed: config.seed });
      after = backend.stats().bytesLive;
    });
    const probeBytes = Math.max(0, after - before);
    return { parameters, probeBytes, probeBatch, activationBytes: Math.ceil((probeBytes / probeBatch) * config.batchSize) };
  } finally {
    module.dispose();
  }
}

export function optimizerKind(optimizer: TrainConfig['optimizer']): OptimizerKind {
  if (optimizer.name === 'adamw') return 'adamw';
  return optimizer.momentum > 0 ? 'sgd-momentum' : 'sgd';
}

/** What `planMemory` is given for a run. */
export function memoryConfigFor(config: TrainConfig, numClasses: number, embeddingDim: number, backbone: BackboneFootprint): MemoryConfig {
  return {
    numClasses,
    embeddingDim,
    batch: config.batchSize,
    backboneParams: backbone.parameters,
    activationBytes: backbone.activationBytes,
    optimizer: optimizerKind(config.optimizer),
    shards: 1,
    sampleRate: config.head?.sampleRate ?? 1,
    weightDtype: config.head?.weightPrecision ?? 'float32',
  };
}

/** The budget of one device: memoryBudget, else the machine's memory on the CPU, else none (WebGPU reports none). */
export function memoryBudgetFor(config: TrainConfig, backend: Backend): { bytes: number; source: string } {
  if (config.memoryBudget !== undefined) return { bytes: config.memoryBudget, source: 'memoryBudget' };
  if (backend.name === 'cpu') return { bytes: totalmem(), source: 'the machine\'s memory' };
  return { bytes: Infinity, source: `none: ${backend.name} reports no total, set memoryBudget` };
}

/** The groups in the order they are printed, with their labels. */
export const MEMORY_GROUPS: readonly [keyof MemoryGroups | 'total', string][] = [
  ['backbone', 'backbone'],
  ['classWeights', 'class weights'],
  ['optimizerState', 'optimizer state'],
  ['activations', 'activations'],
  ['lossHead', 'loss head'],
  ['headWorkspace', 'head workspace'],
  ['total', 'total'],
];

export interface MemoryReport {
  config: MemoryConfig;
  plan: MemoryPlan;
  limits: DeviceLimits;
  budgetSource: string;
  backbone: BackboneFootprint;
}

/** One line per group: label, human units, exact bytes. */
export function formatMemoryLines(r: MemoryReport): string[] {
  const c = r.config;
  const head = `memory plan: ${c.numClasses} classes x ${c.embeddingDim}, batch ${c.batch}, head.sampleRate ${c.sampleRate}`
    + ` (${r.plan.devices[0].sampledClasses} class rows per step), optimizer ${c.optimizer}, backbone ${r.backbone.parameters} parameters`;
  const lines = MEMORY_GROUPS.map(([key, label]) => {
    const bytes = r.plan.totals[key];
    let note = '';
    if (key === 'activations') note = `; measured by a dry forward at batch ${r.backbone.probeBatch}, scaled to ${c.batch}`;
    if (key === 'total') note = `; budget ${Number.isFinite(r.limits.memoryBudget) ? formatBytes(r.limits.memoryBudget) : 'none'} (${r.budgetSource})`;
    return `memory: ${label.padEnd(15)} ${formatBytes(bytes).padStart(10)} (${bytes} bytes${note})`;
  });
  return [head, ...lines];
}

/** The plan as JSON for logs, checkpoint metadata and the report (an unlimited budget is null). */
export function memoryRecord(r: MemoryReport) {
  return {
    ...(Object.fromEntries(MEMORY_GROUPS.map(([key]) => [key, r.plan.totals[key]])) as Record<keyof MemoryGroups | 'total', number>),
    sampleRate: r.config.sampleRate,
    sampledClasses: r.plan.devices[0].sampledClasses,
    backboneParameters: r.backbone.parameters,
    activationProbe: { batch: r.backbone.probeBatch, bytes: r.backbone.probeBytes },
    budget: Number.isFinite(r.limits.memoryBudget) ? r.limits.memoryBudget : null,
    budgetSource: r.budgetSource,
    maxBufferSize: r.limits.maxBufferSize,
    maxStorageBufferBindingSize: r.limits.maxStorageBufferBindingSize,
  };
}

export type MemoryRecord = ReturnType<typeof memoryRecord>;

/**
 * Plans the run's memory and checks it against the backend's limits. Throws a MemoryPlanError
 * whose message proposes what the trainer can do (a `head.sampleRate`); sharding is named only to
 * say that this trainer cannot shard.
 */
export function checkMemory(config: TrainConfig, plugins: Plugins, backend: Backend, numClasses: number): MemoryReport {
  const plugin = plugins.backbones.find((b) => b.name === config.backbone.name)!;
  const { name: _n, ...raw } = config.backbone;
  const embeddingDim = plugin.embeddingDim(plugin.params.parse(raw));
  const backbone = measureBackbone(config, plugins, backend);
  const memConfig = memoryConfigFor(config, numClasses, embeddingDim, backbone);
  const budget = memoryBudgetFor(config, backend);
  const limits = deviceLimits(backend, budget.bytes);
  try {
    const plan = assertFits(memConfig, limits);
    return { config: memConfig, plan, limits, budgetSource: budget.source, backbone };
  } catch (e) {
    if (!(e instanceof MemoryPlanError)) throw e;
    throw new MemoryPlanError(refusal(config, plugins, backend, memConfig, budget, e), e.plan, e.proposal);
  }
}

function refusal(config: TrainConfig, plugins: Plugins, backend: Backend, c: MemoryConfig, budget: { bytes: number; source: string }, e: MemoryPlanError): string {
  const rate = c.sampleRate ?? 1;
  const where = `${backend.name} device (budget ${Number.isFinite(budget.bytes) ? formatBytes(budget.bytes) : 'none'} from ${budget.source})`;
  const what = `${c.numClasses} classes x ${c.embeddingDim}, batch ${c.batch}, head.sampleRate ${rate}`;
  const advice: string[] = [];
  const { sampleRate: r, shards } = e.proposal;
  if (r !== null) {
    const blocked = partialFcProblem({ ...config.head, sampleRate: r }, config.loss, config.optimizer.name, plugins);
    advice.push(blocked
      ? `Partial FC at head.sampleRate: ${r} would fit, but ${blocked.message}.`
      : `It would fit with Partial FC at head.sampleRate: ${r} (in the config: head: { sampleRate: ${r} }).`);
  }
  if (shards !== null) {
    advice.push(r !== null
      ? `Sharding the class weights over ${shards} devices would also fit, but fr train runs on one device and cannot shard.`
      : `Only sharding the class weights over ${shards} devices would fit (no head.sampleRate down to 0.01 does), but fr train runs on one device and cannot shard.`);
  }
  if (r === null) {
    advice.push(`Lower batchSize, use a smaller backbone or fewer classes${config.memoryBudget !== undefined ? ', or raise memoryBudget' : ''}.`);
  }
  return `the run does not fit in the memory of the ${where}: ${what}: ${e.plan.problems.join('; ')}. ${advice.join(' ')}`;
}
