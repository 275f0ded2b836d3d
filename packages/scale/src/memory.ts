/**
 * Memory accounting of a training configuration, device by device, and a check against a device's
 * limits. The figures follow what `createShardedHead` and the optimizers allocate:
 *
 * - backbone (device 0): weights + gradients, 2 * P * 4 bytes;
 * - classWeights (each shard): float32 master weights + their gradient, 2 * C_s * D * 4;
 * - optimizerState: copies * 4 bytes per parameter (SGD 0, SGD momentum 1, AdamW 2), for the
 *   backbone on device 0 and for each shard's weights;
 * - activations (device 0): the caller's estimate;
 * - lossHead (each shard): the logits of the sampled classes and their gradient, 2 * B * S * 4
 *   (2 * B * S * 2 with float16 logits);
 * - headWorkspace (each shard): normalised sampled rows, their gradient and the rows' gradient, +
 *   the gathered rows under Partial FC: (4 + 4 + 4 [+ 4]) * S * D. float16 storage halves the copy
 *   the two matmuls read, but the backward recomputes the float32 rows, so the peak is the same.
 *
 * C_s is the shard's class count (insightface's split), S the rows it uses in a step: C_s at rate 1,
 * else max(floor(rate * C_s), min(B, C_s)) since every class of the batch is kept.
 */
import { ConfigError, FrError } from '@fr/core';
import { sampleBudget } from './sampling.js';
import { splitClasses } from './split.js';

export type OptimizerKind = 'sgd' | 'sgd-momentum' | 'adamw';

export interface MemoryConfig {
  numClasses: number;
  embeddingDim: number;
  batch: number;
  /** Scalars of the backbone's parameters. */
  backboneParams: number;
  /** Bytes of activations kept for the backward pass (an estimate from the caller). */
  activationBytes: number;
  optimizer: OptimizerKind;
  /**
   * Storage of the normalised class weights the matmuls read. Default float32. It does not change
   * the peak (see headWorkspace above); accepted so that a plan can be made from a head's options.
   */
  weightDtype?: 'float32' | 'float16';
  /** Storage of the logits and their gradient (B x sampled classes per shard). Default float32. */
  logitDtype?: 'float32' | 'float16';
  /** Shards of the class weights (devices). Default 1. */
  shards?: number;
  /** Partial FC sample rate. Default 1. */
  sampleRate?: number;
}

export interface DeviceLimits {
  /** Largest buffer, bytes (WebGPU `maxBufferSize`). */
  maxBufferSize: number;
  /** Largest buffer one binding may see, bytes (WebGPU `maxStorageBufferBindingSize`). */
  maxStorageBufferBindingSize: number;
  /** Memory one device may use in total, bytes. */
  memoryBudget: number;
}

export interface MemoryGroups {
  backbone: number;
  classWeights: number;
  optimizerState: number;
  activations: number;
  lossHead: number;
  headWorkspace: number;
}

export interface DeviceMemory extends MemoryGroups {
  device: number;
  /** Classes held by this device's shard. */
  classes: number;
  /** Rows of the shard used in a step (worst case under sampling). */
  sampledClasses: number;
  total: number;
  /** The largest single buffer and what it is. */
  largestBuffer: { name: string; bytes: number };
}

export interface MemoryPlan {
  devices: DeviceMemory[];
  /** Sum over devices, per group. */
  totals: MemoryGroups & { total: number };
  /** Empty when the plan fits the limits. */
  problems: string[];
  fits: boolean;
}

const OPTIMIZER_COPIES: Record<OptimizerKind, number> = { sgd: 0, 'sgd-momentum': 1, adamw: 2 };

function positiveInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1) throw new ConfigError(`memory plan: ${what} must be a positive integer, got ${v}`);
}

/** Bytes per device and per group; with `limits`, the problems that stop it from fitting. */
export function planMemory(config: MemoryConfig, limits?: DeviceLimits): MemoryPlan {
  const { numClasses: C, embeddingDim: D, batch: B } = config;
  positiveInt(C, 'numClasses');
  positiveInt(D, 'embeddingDim');
  positiveInt(B, 'batch');
  const K = config.shards ?? 1;
  const rate = config.sampleRate ?? 1;
  if (!(rate > 0 && rate <= 1)) throw new ConfigError(`memory plan: sampleRate must be in (0, 1], got ${rate}`);
  const copies = OPTIMIZER_COPIES[config.optimizer];
  const P = config.backboneParams;
  const logitBytes = config.logitDtype === 'float16' ? 2 : 4;
  const devices = splitClasses(C, K).map(({ count }, device): DeviceMemory => {
    const S = rate < 1 ? Math.max(sampleBudget(count, rate), Math.min(B, count)) : count;
    const groups: MemoryGroups = {
      backbone: device === 0 ? 2 * P * 4 : 0,
      classWeights: 2 * count * D * 4,
      optimizerState: copies * 4 * ((device === 0 ? P : 0) + count * D),
      activations: device === 0 ? config.activationBytes : 0,
      lossHead: 2 * B * S * logitBytes,
      headWorkspace: (4 + 4 + 4 + (rate < 1 ? 4 : 0)) * S * D,
    };
    const buffers: [string, number][] = [
      ['class weights of the shard', count * D * 4],
      ['logits of the shard (B x sampled classes)', B * S * logitBytes],
      ['gradient of the sampled rows', S * D * 4],
    ];
    const largest = buffers.reduce((a, b) => (b[1] > a[1] ? b : a));
    const total = Object.values(groups).reduce((a, b) => a + b, 0);
    return { device, classes: count, sampledClasses: S, ...groups, total, largestBuffer: { name: largest[0], bytes: largest[1] } };
  });
  const keys = Object.keys(devices[0]).filter((k) => k in { backbone: 1, classWeights: 1, optimizerState: 1, activations: 1, lossHead: 1, headWorkspace: 1 }) as (keyof MemoryGroups)[];
  const totals = Object.fromEntries(keys.map((k) => [k, devices.reduce((s, d) => s + d[k], 0)])) as unknown as MemoryGroups;
  const plan: MemoryPlan = { devices, totals: { ...totals, total: devices.reduce((s, d) => s + d.total, 0) }, problems: [], fits: true };
  if (limits) {
    for (const d of devices) {
      const { name, bytes } = d.largestBuffer;
      if (bytes > limits.maxBufferSize) plan.problems.push(`device ${d.device}: ${name} needs ${fmt(bytes)}, over maxBufferSize ${fmt(limits.maxBufferSize)}`);
      if (bytes > limits.maxStorageBufferBindingSize) plan.problems.push(`device ${d.device}: ${name} needs ${fmt(bytes)}, over maxStorageBufferBindingSize ${fmt(limits.maxStorageBufferBindingSize)}`);
      if (d.total > limits.memoryBudget) plan.problems.push(`device ${d.device}: needs ${fmt(d.total)} in total, over the budget of ${fmt(limits.memoryBudget)}`);
    }
    plan.fits = plan.problems.length === 0;
  }
  return plan;
}

/** Sampling rates tried, in order, when proposing one that fits. */
const RATES = [0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01];

export interface FitProposal {
  /** Smallest shard count (at the configured rate) that fits, or null. */
  shards: number | null;
  /** Largest rate of RATES (at the configured shard count) that fits, or null. */
  sampleRate: number | null;
}

/** The shard count or sampling rate that would make the configuration fit. */
export function proposeFit(config: MemoryConfig, limits: DeviceLimits, maxShards = 1024): FitProposal {
  let shards: number | null = null;
  for (let k = config.shards ?? 1; k <= Math.min(maxShards, config.numClasses); k++) {
    if (planMemory({ ...config, shards: k }, limits).fits) {
      shards = k;
      break;
    }
  }
  const rate = config.sampleRate ?? 1;
  const sampleRate = RATES.filter((r) => r < rate).find((r) => planMemory({ ...config, sampleRate: r }, limits).fits) ?? null;
  return { shards, sampleRate };
}

export class MemoryPlanError extends FrError {
  override name = 'MemoryPlanError';
  constructor(message: string, readonly plan: MemoryPlan, readonly proposal: FitProposal) {
    super(message);
  }
}

/** Returns the plan when it fits; otherwise throws a MemoryPlanError that proposes what would fit. */
export function assertFits(config: MemoryConfig, limits: DeviceLimits): MemoryPlan {
  const plan = planMemory(config, limits);
  if (plan.fits) return plan;
  const p = proposeFit(config, limits);
  const K = config.shards ?? 1;
  const rate = config.sampleRate ?? 1;
  const ways: string[] = [];
  if (p.shards !== null) ways.push(`shard the class weights over ${p.shards} devices (shards: ${p.shards})`);
  if (p.sampleRate !== null) ways.push(`sample classes with Partial FC at rate ${p.sampleRate} (sampleRate: ${p.sampleRate})`);
  const advice = ways.length > 0
    ? `It would fit if you ${ways.join(', or ')}.`
    : `Neither more shards (up to ${Math.min(1024, config.numClasses)}) nor a lower sampling rate makes it fit: reduce the batch, the backbone or its activations.`;
  throw new MemoryPlanError(
    `configuration does not fit (${config.numClasses} classes, D ${config.embeddingDim}, batch ${config.batch}, ${K} shard(s), rate ${rate}): ${plan.problems.join('; ')}. ${advice}`,
    plan,
    p,
  );
}

/** Bytes in binary units, for messages and tables. */
export function fmt(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

/** The limits of a backend's device, with a total budget the caller knows (WebGPU does not report one). */
export function deviceLimits(backend: { capabilities: { maxBufferSize: number; maxStorageBufferBindingSize: number } }, memoryBudget: number): DeviceLimits {
  const c = backend.capabilities;
  return { maxBufferSize: c.maxBufferSize, maxStorageBufferBindingSize: c.maxStorageBufferBindingSize, memoryBudget };
}
