export { trainConfigSchema, loadConfig, totalSteps, type TrainConfig } from './config.js';
export { train, buildRun, checkpointTensors, NonFiniteLossError, type TrainOptions, type TrainResult, type LogEntry } from './train.js';
export { compareCommand, conformanceCommand, evalCommand, loadRun, parseDataArgument } from './commands.js';
export { embedFolder } from './embed.js';
export { exportOnnxCommand } from './export.js';
export { selectBackend } from './backend.js';
export { defaultPlugins, installedLosses, installedBackbones, type Plugins } from './plugins.js';
export { evaluateModel, rawPixelReport, formatReport, type VerificationReport } from './evaluate.js';
