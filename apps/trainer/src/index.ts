export { trainConfigSchema, loadConfig, totalSteps, parseBytes, type TrainConfig } from './config.js';
export {
  train, buildRun, checkpointTensors, NonFiniteLossError, CHECKPOINT_FILE, type TrainOptions, type TrainResult, type LogEntry, type StepInfo, type HeadTensors,
} from './train.js';
export {
  checkMemory, measureBackbone, memoryConfigFor, memoryBudgetFor, formatMemoryLines, memoryRecord, ACTIVATION_PROBE_BATCH, MEMORY_GROUPS,
  type BackboneFootprint, type MemoryReport, type MemoryRecord,
} from './memory.js';
export { headSectionProblem, sampleRngFor, type TrainHead } from './scale-head.js';
export { compareCommand, conformanceCommand, evalCommand, loadRun, parseDataArgument } from './commands.js';
export { embedFolder } from './embed.js';
export { exportOnnxCommand } from './export.js';
export { selectBackend, type SelectedBackend } from './backend.js';
export { defaultPlugins, installedLosses, installedBackbones, type Plugins } from './plugins.js';
export { evaluateModel, rawPixelReport, formatReport, type VerificationReport } from './evaluate.js';
