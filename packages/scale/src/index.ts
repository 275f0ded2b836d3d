/**
 * @fr/scale: training heads for millions of identities. A classifier sharded over several
 * backends (distributed softmax cross-entropy by a per-row log-sum-exp all-reduce; one-vs-all
 * sigmoid without any cross-shard reduction), Partial FC sampling with a row-sparse SGD, float16
 * conversion and loss scaling, and memory planning against a device's limits.
 */
export { splitClasses, type ShardRange } from './split.js';
export { sampleShard, sampleBudget, type ShardSample } from './sampling.js';
export {
  createShardedHead,
  type ShardedHead,
  type ShardedHeadOptions,
  type Shard,
  type StepOptions,
  type HeadStep,
} from './sharded-head.js';
export { scaleHeadProblem, shardedHeadFor, type ShardedHeadSetup } from './description.js';
export { partialFcSgd } from './partial-optim.js';
export {
  float32ToFloat16Bits,
  float16BitsToFloat32,
  roundToFloat16,
  float32ToFloat16Array,
  float16ToFloat32Array,
  FLOAT16_MAX,
  resolveWeightPrecision,
  resolveLogitPrecision,
  type WeightPrecision,
  type ResolvedPrecision,
} from './half.js';
export { createLossScaler, type LossScaler, type LossScalerOptions } from './loss-scaler.js';
export {
  planMemory,
  proposeFit,
  assertFits,
  deviceLimits,
  fmt as formatBytes,
  MemoryPlanError,
  type MemoryConfig,
  type DeviceLimits,
  type MemoryGroups,
  type DeviceMemory,
  type MemoryPlan,
  type OptimizerKind,
  type FitProposal,
} from './memory.js';
