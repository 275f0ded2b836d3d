/**
 * Memory accounting of a run, before anything of the training is allocated: bytes per tensor group
 * from @fr/scale's `planMemory` (backbone, class weights, optimizer state, activations, loss head,
 * head workspace), device by device when the head is sharded, checked against each device's
 * limits. A run that cannot fit is refused with the `head.sampleRate` or `head.shards` that would
 * make it fit.
 */
import { totalmem } from 'node:os';
import { createRng, tensor, tidy, type Backend } from '@fr/core';
import {
  assertFits, deviceLimits, formatBytes, MemoryPlanError,
  type DeviceLimits, type MemoryConfig, type MemoryGroups, type MemoryPlan, type OptimizerKind,
} from '@fr/scale';
import type { TrainConfig } from './config.js';
import { headSectionProblem } from './scale-head.js';
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
      module.forward(x, { training: true, seed: config.seed, activationStorage: config.activationPrecision });
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
    shards: config.head?.shards ?? 1,
    sampleRate: config.head?.sampleRate ?? 1,
    weightDtype: config.head?.weightPrecision ?? 'float32',
    logitDtype: config.head?.logitPrecision ?? 'float32',
  };
}

/**
 * The budget of one device: memoryBudget, else on the CPU the machine's memory (shared by the CPU
 * shards of one process, so divided among them), the wasm memory's 4 GiB on wasm, else none (WebGPU
 * reports no total).
 */
export function memoryBudgetFor(config: TrainConfig, backend: Backend): { bytes: number; source: string } {
  if (config.memoryBudget !== undefined) return { bytes: config.memoryBudget, source: 'memoryBudget' };
  const shards = config.head?.shards ?? 1;
  if (backend.name === 'cpu') {
    return shards > 1
      ? { bytes: Math.floor(totalmem() / shards), source: `the machine's memory, shared by ${shards} CPU shards` }
      : { bytes: totalmem(), source: 'the machine\'s memory' };
  }
  // One wasm backend addresses at most 4 GiB (wasm32), within the machine's memory.
  if (backend.name === 'wasm') return { bytes: Math.min(totalmem(), 2 ** 32 - 2 ** 16), source: 'the 4 GiB a wasm32 memory addresses' };
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
  /** Storage of the backbone's activations kept for the backward pass. */
  activationPrecision: 'float32' | 'float16';
  plan: MemoryPlan;
  limits: DeviceLimits;
  budgetSource: string;
  backbone: BackboneFootprint;
}

/** One line per group (label, human units, exact bytes), then one per device when the head is sharded. */
export function formatMemoryLines(r: MemoryReport): string[] {
  const c = r.config;
  const shards = c.shards ?? 1;
  const rows = shards > 1 ? `${r.plan.devices.map((d) => d.sampledClasses).join(' + ')} class rows per step` : `${r.plan.devices[0].sampledClasses} class rows per step`;
  const head = `memory plan: ${c.numClasses} classes x ${c.embeddingDim}, batch ${c.batch}, head.sampleRate ${c.sampleRate}`
    + `${shards > 1 ? `, head.shards ${shards}` : ''} (${rows}), optimizer ${c.optimizer}, backbone ${r.backbone.parameters} parameters`;
  const lines = MEMORY_GROUPS.map(([key, label]) => {
    const bytes = r.plan.totals[key];
    let note = '';
    if (key === 'activations') note = `; ${r.activationPrecision} storage, measured by a dry forward at batch ${r.backbone.probeBatch}, scaled to ${c.batch}`;
    if (key === 'total') note = `; budget ${Number.isFinite(r.limits.memoryBudget) ? formatBytes(r.limits.memoryBudget) : 'none'}${shards > 1 ? ' per device' : ''} (${r.budgetSource})`;
    return `memory: ${label.padEnd(15)} ${formatBytes(bytes).padStart(10)} (${bytes} bytes${note})`;
  });
  const devices = shards > 1
    ? r.plan.devices.map((d) => `memory: device ${d.device}: ${formatBytes(d.total).padStart(10)} (${d.total} bytes; classes ${d.classes}${d.device === 0 ? ', backbone and activations' : ''})`)
    : [];
  return [head, ...lines, ...devices];
}

/** The plan as JSON for logs, checkpoint metadata and the report (an unlimited budget is null). */
export function memoryRecord(r: MemoryReport) {
  return {
    ...(Object.fromEntries(MEMORY_GROUPS.map(([key]) => [key, r.plan.totals[key]])) as Record<keyof MemoryGroups | 'total', number>),
    sampleRate: r.config.sampleRate,
    shards: r.config.shards ?? 1,
    activationPrecision: r.activationPrecision,
    sampledClasses: r.plan.devices.reduce((n, d) => n + d.sampledClasses, 0),
    deviceTotals: r.plan.devices.map((d) => d.total),
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
 * whose message proposes what the trainer can do: a `head.sampleRate`, a `head.shards`.
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
    return { config: memConfig, activationPrecision: config.activationPrecision, plan, limits, budgetSource: budget.source, backbone };
  } catch (e) {
    if (!(e instanceof MemoryPlanError)) throw e;
    throw new MemoryPlanError(refusal(config, plugins, backend, memConfig, budget, e), e.plan, e.proposal);
  }
}

function refusal(config: TrainConfig, plugins: Plugins, backend: Backend, c: MemoryConfig, budget: { bytes: number; source: string }, e: MemoryPlanError): string {
  const rate = c.sampleRate ?? 1;
  const K = c.shards ?? 1;
  const where = `${backend.name} device${K > 1 ? 's' : ''} (budget ${Number.isFinite(budget.bytes) ? formatBytes(budget.bytes) : 'none'}${K > 1 ? ' each' : ''} from ${budget.source})`;
  const what = `${c.numClasses} classes x ${c.embeddingDim}, batch ${c.batch}, head.sampleRate ${rate}${K > 1 ? `, head.shards ${K}` : ''}`;
  const advice: string[] = [];
  const { sampleRate: r } = e.proposal;
  // CPU shards of one process share the machine's memory: more of them fit no better under the default budget.
  const shards = backend.name === 'cpu' && config.memoryBudget === undefined ? null : e.proposal.shards;
  const option = (head: { sampleRate?: number; shards?: number }, fits: string, key: string) => {
    const blocked = headSectionProblem({ ...config.head, ...head }, config.loss, config.optimizer.name, plugins);
    return blocked ? `${fits} would fit, but ${blocked.message}.` : `It would fit with ${fits} (in the config: head: { ${key} }).`;
  };
  if (r !== null) advice.push(option({ sampleRate: r }, `Partial FC at head.sampleRate: ${r}`, `sampleRate: ${r}`));
  if (shards !== null && shards > K) {
    advice.push(`${option({ shards }, `the class weights sharded over ${shards} devices`, `shards: ${shards}`)} Each shard takes a device of its own (WebGPU: one adapter request each; on one physical GPU they share its memory).`);
  }
  if (r === null && (shards === null || shards <= K)) {
    advice.push(`Lower batchSize, use a smaller backbone or fewer classes${config.memoryBudget !== undefined ? ', or raise memoryBudget' : ''}.`);
  }
  return `the run does not fit in the memory of the ${where}: ${what}: ${e.plan.problems.join('; ')}. ${advice.join(' ')}`;
}
