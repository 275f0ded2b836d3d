export { trainConfigSchema, loadConfig, readConfigFile, totalSteps, parseBytes, DEFAULT_OUTPUT, type TrainConfig } from './config.js';
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
export { exportOnnxCommand, exportSafetensorsCommand } from './export.js';
export { importCommand, loadPretrained, ONNX_MODEL_FILE, type ImportOptions } from './import.js';
export { selectBackend, type SelectedBackend } from './backend.js';
export { defaultPlugins, installedLosses, installedBackbones, builtinOrigin, type Plugins } from './plugins.js';
export {
  resolvePlugin, importPlugin, loadPlugin, loadPlugins, combinePlugins, recordedPlugins, reloadPlugins,
  type PluginSource, type PluginRequest, type LoadedPlugin,
} from './plugin-loader.js';
export { loadConfigWithPlugins, commandLinePlugins, type LoadedConfig } from './plugin-config.js';
export { evaluateModel, rawPixelReport, formatReport, type VerificationReport } from './evaluate.js';
