/**
 * The training loop, top to bottom: data, memory plan, forward, loss, backward, clip, step,
 * schedule, log, evaluate, checkpoint. Everything a step needs is a function of (seed, step)
 * (Partial FC's sampled classes included), so `resume` continues exactly where a checkpoint left off.
 */
import { mkdir, readFile, access, rename } from 'node:fs/promises';
import { join } from 'node:path';
import {
  clipGradsToNorm, ConfigError, globalGradNorm, createRng, createSchedule, DataError, parseLossParams, restoreCheckpoint, serializeCheckpoint,
  tensor, tidyAsync, type Backend, type Module, type NamedTensor, type Optimizer,
} from '@fr/core';
import { writeFileAtomic } from '@fr/core/node';
import { createLossScaler, type LossScaler } from '@fr/scale';
import { totalSteps, type TrainConfig } from './config.js';
import { loadBatch, openTrainingSet, openVerificationSets, type Batch } from './data.js';
import { evaluateModel, formatReport, rawPixelReport, type VerificationReport } from './evaluate.js';
import { checkMemory, formatMemoryLines, memoryRecord, type MemoryRecord } from './memory.js';
import { headSectionProblem, pluginHead, scaleHead, usesScaleHead, type TrainHead } from './scale-head.js';
import type { Plugins } from './plugins.js';
import { loadPretrained } from './import.js';
import { Progress } from './progress.js';
import { checkInterrupted, InterruptedError, yieldToEventLoop, type TrainSignal } from './interrupt.js';
import { appendLog, checkOutputFolder, checkResumeConfig, removeStaleTemporaries, writeLog, resumeState, trimLog, validateVerificationSets } from './run-guard.js';
import { checkFiniteState, failedRunError, NonFiniteLossError, NumericGuard, type RunFailureState } from './run-failure.js';
import { writeReport } from './report.js';

export interface TrainOptions {
  plugins: Plugins;
  backend: Backend;
  /** Why this backend was chosen, for the log and the report. */
  backendReason: string;
  /**
   * Opens another device of the backend's kind (`selectBackend` gives one). A run with
   * `head.shards` K > 1 opens K - 1 of them for shards 1..K-1 and releases them at the end.
   */
  openDevice?: () => Promise<Backend>;
  /** Continue from the checkpoint in the output folder. */
  resume?: boolean;
  /** Replace a run the output folder holds (its files are replaced once the new run has a checkpoint). */
  overwrite?: boolean;
  /** `resume` with a config that trains differently (the changes are printed). */
  allowConfigChange?: boolean;
  /** Stop (with a checkpoint) after this many steps of this invocation; for tests of resume. */
  stopAfter?: number;
  /** Printing: defaults to stderr progress; tests pass a silent sink. */
  print?: (line: string) => void;
  /** Set by Ctrl-C: the loop saves a checkpoint and returns. */
  signal?: TrainSignal;
  /** Also evaluate raw-pixel similarity on every verification set, as the baseline. */
  baseline?: boolean;
  /** Called after each optimizer step (for tests and tools that watch a run). */
  onStep?: (info: StepInfo) => void;
}

export interface StepInfo {
  /** Steps done, this one included. */
  step: number;
  loss: number;
  /** Partial FC: the global class ids whose head rows took part in this step (sorted); null with the full head. */
  sampledClasses: Int32Array | null;
}

export interface LogEntry {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number | null;
  imagesPerSecond: number;
  skipped?: boolean;
  /** The loss scale of the step, with `lossScale` in the config. */
  lossScale?: number;
}

export interface TrainResult {
  steps: number;
  finalLoss: number;
  losses: LogEntry[];
  evaluations: { step: number; results: VerificationReport[] }[];
  baseline: VerificationReport[];
  outputDir: string;
  reportPath: string;
  interrupted: boolean;
  /** Planned bytes per tensor group, as printed at the start. */
  memory: MemoryRecord;
}

export { NonFiniteLossError };

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

/** The tensors of a run's head. */
export type HeadTensors = Pick<TrainHead, 'parameters' | 'buffers' | 'dispose'>;

/**
 * Builds the model, head and optimizer a config describes. The head is the loss plugin's own; with
 * `head.sampleRate` < 1, `head.shards` > 1, or float16 `head.weightPrecision` or
 * `head.logitPrecision` it is @fr/scale's, built from the plugin head's description (Partial FC,
 * shards, float16 storage). Either way the loop drives it through `TrainHead`. Shard i of the class
 * weights goes to `headBackends[i]`; by default every shard is on `backend` (as when a sharded
 * checkpoint is read for evaluation).
 */
export function buildRun(config: TrainConfig, plugins: Plugins, backend: Backend, numClasses: number, headBackends?: readonly Backend[]) {
  const rng = createRng(config.seed);
  const backbonePlugin = plugins.backbones.find((b) => b.name === config.backbone.name)!;
  const lossPlugin = plugins.losses.find((l) => l.name === config.loss.name)!;
  const { name: _b, pretrained: _p, ...backboneParams } = config.backbone;
  const { name: _l, ...lossParams } = config.loss;
  const bParams = backbonePlugin.params.parse(backboneParams);
  const module: Module = backbonePlugin.build({ backend, params: bParams, rng: rng.fork() });
  const embeddingDim = backbonePlugin.embeddingDim(bParams);
  const inputShape = backbonePlugin.inputShape(bParams);
  const params = parseLossParams(lossPlugin, lossParams);
  // The defaults of the head section, for configs built without the schema.
  const h = { sampleRate: 1, shards: 1, weightPrecision: 'float32' as const, logitPrecision: 'float32' as const, ...config.head };
  let head: TrainHead;
  if (usesScaleHead(h)) {
    const problem = headSectionProblem(h, config.loss, config.optimizer.name, plugins);
    if (problem) throw new ConfigError(`head.${problem.field}: ${problem.message}`);
    const backends = headBackends ?? Array.from({ length: h.shards }, () => backend);
    if (backends.length !== h.shards) throw new ConfigError(`head.shards is ${h.shards}, but ${backends.length} devices were given for the head`);
    head = scaleHead({
      loss: lossPlugin, params, backends, numClasses, embeddingDim, rng: rng.fork(),
      sampleRate: h.sampleRate, weightPrecision: h.weightPrecision, logitPrecision: h.logitPrecision, seed: config.seed,
    });
  } else {
    head = pluginHead(lossPlugin.createHead({ backend, numClasses, embeddingDim, params, rng: rng.fork() }));
  }
  const backbone = module.parameters.filter((p) => p.tensor.requiresGrad);
  const optimizer = head.optimizer(backbone, config.optimizer);
  const trainable = [...backbone, ...head.parameters.filter((p) => p.tensor.requiresGrad)];
  return { module, head, optimizer, trainable, embeddingDim, inputShape };
}

/** Every tensor a checkpoint holds: backbone, head and optimizer state. */
export function checkpointTensors(module: Module, head: Pick<TrainHead, 'parameters' | 'buffers'>, optimizer: Optimizer): NamedTensor[] {
  return [
    ...module.parameters.map((p) => ({ name: `backbone.${p.name}`, tensor: p.tensor })),
    ...module.buffers.map((p) => ({ name: `backbone.${p.name}`, tensor: p.tensor })),
    ...head.parameters.map((p) => ({ name: `head.${p.name}`, tensor: p.tensor })),
    ...head.buffers.map((p) => ({ name: `head.${p.name}`, tensor: p.tensor })),
    ...optimizer.state(),
  ];
}

export async function train(config: TrainConfig, o: TrainOptions): Promise<TrainResult> {
  const failure: RunFailureState = {};
  try {
    return await trainRun(config, o, failure);
  } catch (e) {
    // A run is never lost: an error after training started saves the last completed step first.
    throw await failedRunError(e, failure);
  }
}

async function trainRun(config: TrainConfig, o: TrainOptions, failure: RunFailureState): Promise<TrainResult> {
  const print = o.print ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { backend } = o;
  const out = config.output;
  const finalLogPath = join(out, 'log.jsonl');
  const checkpointPath = join(out, CHECKPOINT_FILE);
  // A run replacing another logs beside the old log until it has a checkpoint of its own.
  const { replacing } = await checkOutputFolder(out, o);
  let logPath = replacing ? `${finalLogPath}.new` : finalLogPath;
  for (const name of await removeStaleTemporaries(out)) print(`removed ${join(out, name)}, left by an interrupted write`);

  // Data.
  const trainSet = await openTrainingSet(config);

  // Memory: planned before anything of the training is allocated; a run that cannot fit stops
  // here, before its output folder is written to.
  const memory = checkMemory(config, o.plugins, backend, trainSet.numClasses);
  const memoryLines = formatMemoryLines(memory);
  const memoryInfo = memoryRecord(memory);

  await mkdir(out, { recursive: true });
  const verificationSets = await openVerificationSets(config);
  const steps = totalSteps(config, trainSet.length);

  // Devices of the shards 1..K-1 (shard 0 shares the backbone's).
  const shardCount = config.head?.shards ?? 1;
  if (shardCount > 1 && !o.openDevice) throw new ConfigError(`head.shards ${shardCount}: this caller of train() gives no openDevice to open the other ${shardCount - 1} devices with`);
  const extraDevices: Backend[] = [];
  for (let i = 1; i < shardCount; i++) extraDevices.push(await o.openDevice!());

  // Model, loss head, optimizer, schedule.
  const run = buildRun(config, o.plugins, backend, trainSet.numClasses, [backend, ...extraDevices]);
  const { module, head, optimizer, trainable, embeddingDim } = run;
  if (config.backbone.pretrained && !o.resume) await loadPretrained(module, String(config.backbone.pretrained), config.backbone.name);
  const [c, h, w] = run.inputShape;
  if (trainSet.shape[1] !== h || trainSet.shape[2] !== w) {
    throw new DataError(`training images are ${trainSet.shape[2]}x${trainSet.shape[1]}, backbone ${config.backbone.name} takes ${w}x${h}: set the backbone's inputSize or the data size`);
  }
  await validateVerificationSets(verificationSets, run.inputShape, yieldToEventLoop);
  const schedule = createSchedule(config.schedule, config.optimizer.lr, steps);
  const saved = checkpointTensors(module, head, optimizer);
  let scaler = createScaler(config, null);

  let step = 0;
  const losses: LogEntry[] = [];
  const evaluations: TrainResult['evaluations'] = [];
  if (o.resume) {
    const bytes = await readFile(checkpointPath).catch(() => {
      throw new DataError(`--resume: no checkpoint at ${checkpointPath}`);
    });
    const state = resumeState(bytes, checkpointPath);
    const written = state.config;
    if ((written.head?.shards ?? 1) !== shardCount) {
      throw new DataError(`--resume: ${checkpointPath} was written with head.shards ${written.head?.shards ?? 1}, the config has ${shardCount}; resume with the same head.shards`);
    }
    checkResumeConfig(checkpointPath, written, config, o.allowConfigChange === true, print);
    const meta = restoreCheckpoint(bytes, saved, { source: checkpointPath });
    step = state.step;
    optimizer.setSteps(state.optimizerSteps);
    await trimLog(logPath, step);
    losses.push(...(JSON.parse(meta.losses ?? '[]') as LogEntry[]));
    evaluations.push(...(JSON.parse(meta.evaluations ?? '[]') as TrainResult['evaluations']));
    if (meta.lossScale) scaler = createScaler(config, JSON.parse(meta.lossScale) as ScalerState);
    print(`resumed at step ${step} from ${checkpointPath}`);
  } else {
    await writeLog(logPath, '');
  }
  await appendLog(logPath, `${JSON.stringify({ step, memory: memoryInfo })}\n`);

  const saveCheckpoint = async () => {
    // Weights that went non-finite are not written over the last good checkpoint.
    await checkFiniteState(saved, step, checkpointPath);
    const bytes = await serializeCheckpoint({
      tensors: saved,
      metadata: {
        step: String(step),
        numClasses: String(trainSet.numClasses),
        optimizerSteps: String(optimizer.steps),
        config: JSON.stringify(config),
        plugins: JSON.stringify(o.plugins.sources ?? []),
        losses: JSON.stringify(losses),
        evaluations: JSON.stringify(evaluations.map((e) => ({ step: e.step, results: e.results.map(slimReport) }))),
        memory: JSON.stringify(memoryInfo),
        ...(scaler ? { lossScale: JSON.stringify({ scale: scaler.scale, goodSteps: scaler.goodSteps, skippedSteps: scaler.skippedSteps }) } : {}),
      },
    });
    const write = async () => {
      await writeFileAtomic(checkpointPath, bytes);
      if (logPath !== finalLogPath) {
        await rename(logPath, finalLogPath);
        logPath = finalLogPath;
      }
    };
    await (o.signal?.guardWrite ? o.signal.guardWrite(write) : write());
  };

  const evaluate = async () => {
    const results: VerificationReport[] = [];
    for (const set of verificationSets) {
      // Ctrl-C stops an evaluation between batches; the loop then saves the step.
      const r = await evaluateModel(backend, module, set, embeddingDim, () => checkInterrupted(o.signal)).catch((e: unknown) => {
        if (e instanceof InterruptedError) return null;
        throw e;
      });
      if (!r) return;
      results.push(r);
      print(`step ${step}: ${formatReport(r)}`);
    }
    if (results.length) {
      evaluations.push({ step, results });
      await appendLog(logPath, `${JSON.stringify({ step, eval: results.map(slimReport) })}\n`);
    }
  };

  print(`backend: ${o.backendReason}`);
  for (const notice of trainSet.notices ?? []) print(`notice: ${notice}`);
  for (const line of memoryLines) print(line);
  const partial = head.sampleRate < 1 ? ` (Partial FC: ${memoryInfo.sampledClasses} of ${trainSet.numClasses} class rows per step)` : '';
  const sharded = shardCount > 1 ? `, class weights over ${shardCount} ${backend.name} devices` : '';
  for (const note of head.notes) print(`head: ${note}`);
  print(`training ${config.backbone.name} with ${config.loss.name}${partial}${sharded} on ${trainSet.length} images of ${trainSet.numClasses} identities for ${steps} steps of ${config.batchSize}`);
  const progress = new Progress(steps, step);
  let interrupted = false;
  const stopAt = o.stopAfter !== undefined ? Math.min(steps, step + o.stopAfter) : steps;
  let next: Promise<Batch> | null = step < stopAt ? loadBatch(trainSet, config.seed, step, config.batchSize, config.data.flip) : null;
  let lastLoss = NaN;
  const numeric = new NumericGuard(config);
  const startStep = step;
  // From here on an error saves the last completed step (see `train`).
  Object.assign(failure, { startStep, step: () => step, checkpointPath, save: saveCheckpoint });
  if (o.signal) o.signal.training = true;

  while (step < stopAt) {
    // Let Ctrl-C be seen between steps, even when a step never waits on anything.
    await yieldToEventLoop();
    // Data: this step's batch, and start loading the next one.
    const started = performance.now();
    const batch = await next!;
    next = step + 1 < stopAt ? loadBatch(trainSet, config.seed, step + 1, config.batchSize, config.data.flip) : null;
    // A failure of the next batch is thrown when it is awaited, not as an unhandled rejection.
    next?.catch(() => {});
    const lr = schedule(step);

    const lossScale = scaler?.scale ?? 1;
    const mode = { training: true, seed: config.seed * 1_000_003 + step, activationStorage: config.activationPrecision };
    // Forward, loss, backward: one scope, so nothing of the step outlives it but the gradients. It
    // is asynchronous because a head may wait on the host mid-step (Partial FC samples this
    // batch's classes, shards combine their rows); the classes drawn depend on (seed, step) only.
    const lossValue = await tidyAsync(async () => {
      const x = tensor(backend, batch.images, [config.batchSize, c, h, w]);
      const embeddings = module.forward(x, mode);
      return head.lossAndBackward(embeddings, batch.labels, { lossScale, seed: config.seed, step });
    });
    // The norm is read every step even without clipping: a NaN in any gradient shows there, while
    // the loss alone can stay finite (a max over NaN scores may drop them). It spans every device
    // of a sharded head, and the clip below reuses it instead of computing it again.
    let normValue = await globalGradNorm(trainable);

    // Loss scaling: an overflow skips the step (and lowers a dynamic scale) while the scale is
    // above 1; otherwise the gradients are unscaled, then clipped (as torch's GradScaler).
    if (scaler) {
      const overflow = !Number.isFinite(lossValue) || !Number.isFinite(normValue);
      if (overflow && scaler.scale > 1) {
        optimizer.zeroGrad();
        scaler.update(true);
        print(`step ${step}: gradients overflow at loss scale ${lossScale}; step skipped, scale now ${scaler.scale}`);
        losses.push({ step, loss: lossValue, lr, gradNorm: normValue, imagesPerSecond: 0, skipped: true, lossScale });
        step++;
        numeric.skipped(`gradients overflow at loss scale ${lossScale}`);
        continue;
      }
      if (!overflow) {
        scaler.unscale(trainable);
        normValue /= lossScale;
        scaler.update(false);
      }
    }

    // A NaN or Inf loss: stop with the last good checkpoint, or skip the step.
    if (!Number.isFinite(lossValue) || !Number.isFinite(normValue)) {
      optimizer.zeroGrad();
      const what = `loss ${lossValue}, gradient norm ${normValue} at step ${step}`;
      if (config.onNonFinite === 'skip') {
        print(`skipping step ${step}: ${what}`);
        losses.push({ step, loss: lossValue, lr, gradNorm: normValue, imagesPerSecond: 0, skipped: true });
        step++;
        numeric.skipped(what);
        continue;
      }
      throw new NonFiniteLossError(`${what}; stopped. The last good checkpoint is ${checkpointPath} (if one was written); lower the learning rate or set onNonFinite: skip`);
    }

    // Clip, step and schedule.
    if (config.clipGradNorm) clipGradsToNorm(trainable, config.clipGradNorm, normValue);
    optimizer.step(lr);
    numeric.applied();
    const sampled = head.sampledClasses();
    optimizer.zeroGrad();
    lastLoss = lossValue;
    step++;

    // Log.
    const imagesPerSecond = (config.batchSize * 1000) / (performance.now() - started);
    const entry: LogEntry = { step, loss: lossValue, lr, gradNorm: normValue, imagesPerSecond, ...(scaler ? { lossScale } : {}) };
    losses.push(entry);
    o.onStep?.({ step, loss: lossValue, sampledClasses: sampled });
    progress.update(step, lossValue, lr, imagesPerSecond);
    if (step % config.logEvery === 0 || step === steps) await appendLog(logPath, `${JSON.stringify(entry)}\n`);

    // Evaluate and checkpoint at their intervals.
    if (config.evalEvery && step % config.evalEvery === 0 && step < steps) await evaluate();
    if (config.checkpointEvery && step % config.checkpointEvery === 0) await saveCheckpoint();
    if (o.signal?.interrupted) {
      interrupted = true;
      break;
    }
  }
  progress.done();
  numeric.checkAnyApplied(step - startStep);

  if (step >= steps && !interrupted) await evaluate();
  interrupted ||= o.signal?.interrupted === true;
  await saveCheckpoint();
  failure.save = undefined;
  if (o.signal) o.signal.training = false;
  if (interrupted) print(`interrupted: checkpoint saved at step ${step} in ${checkpointPath}; continue with --resume`);

  const baseline: VerificationReport[] = [];
  if (o.baseline) {
    for (const set of verificationSets) {
      const r = await rawPixelReport(set);
      baseline.push(r);
      print(formatReport(r));
    }
  }
  const reportPath = join(out, 'report.html');
  await writeReport(reportPath, { config, backend: o.backendReason, losses, evaluations, baseline, memory: memoryLines });
  module.dispose();
  head.dispose();
  optimizer.dispose();
  for (const d of extraDevices) d.dispose();
  return { steps: step, finalLoss: lastLoss, losses, evaluations, baseline, outputDir: out, reportPath, interrupted, memory: memoryInfo };
}

interface ScalerState {
  scale: number;
  goodSteps: number;
  skippedSteps: number;
}

/** The loss scaler a config asks for (null: none), continuing from `state` on resume. */
function createScaler(config: TrainConfig, state: ScalerState | null): LossScaler | null {
  const c = config.lossScale;
  if (c === undefined) return null;
  const resumed = state ? { scale: state.scale, goodSteps: state.goodSteps, skippedSteps: state.skippedSteps } : {};
  return typeof c === 'number'
    ? createLossScaler({ mode: 'static', scale: c, ...resumed })
    : createLossScaler({ mode: 'dynamic', scale: c.initial, growthInterval: c.growthInterval, maxScale: Math.max(2 ** 24, c.initial), ...resumed });
}

/** A report without the per-pair arrays, for logs and checkpoint metadata. */
export function slimReport(r: VerificationReport) {
  const { scores: _s, issame: _i, roc: _r, ...rest } = r;
  return rest;
}

export async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}
