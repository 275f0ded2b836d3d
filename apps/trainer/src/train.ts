/**
 * The training loop, top to bottom: data, forward, loss, backward, clip, step, schedule, log,
 * evaluate, checkpoint. Everything a step needs is a function of (seed, step), so `resume`
 * continues exactly where a checkpoint left off.
 */
import { mkdir, writeFile, appendFile, readFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import {
  adamw, backward, clipGradNorm, gradNorm as gradNormOf, createRng, createSchedule, DataError, parseLossParams, restoreCheckpoint, serializeCheckpoint, sgd,
  tensor, tidy, type Backend, type LossHead, type Module, type NamedTensor, type Optimizer,
} from '@fr/core';
import { writeFileAtomic } from '@fr/core/node';
import { totalSteps, type TrainConfig } from './config.js';
import { loadBatch, openTrainingSet, openVerificationSets, type Batch } from './data.js';
import { evaluateModel, formatReport, rawPixelReport, type VerificationReport } from './evaluate.js';
import type { Plugins } from './plugins.js';
import { Progress } from './progress.js';
import { writeReport } from './report.js';

export interface TrainOptions {
  plugins: Plugins;
  backend: Backend;
  /** Why this backend was chosen, for the log and the report. */
  backendReason: string;
  /** Continue from the checkpoint in the output folder. */
  resume?: boolean;
  /** Stop (with a checkpoint) after this many steps of this invocation; for tests of resume. */
  stopAfter?: number;
  /** Printing: defaults to stderr progress; tests pass a silent sink. */
  print?: (line: string) => void;
  /** Set by Ctrl-C: the loop saves a checkpoint and returns. */
  signal?: { interrupted: boolean };
  /** Also evaluate raw-pixel similarity on every verification set, as the baseline. */
  baseline?: boolean;
}

export interface LogEntry {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number | null;
  imagesPerSecond: number;
  skipped?: boolean;
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
}

export class NonFiniteLossError extends DataError {
  override name = 'NonFiniteLossError';
}

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

/** Builds the model, head and optimizer a config describes. */
export function buildRun(config: TrainConfig, plugins: Plugins, backend: Backend, numClasses: number) {
  const rng = createRng(config.seed);
  const backbonePlugin = plugins.backbones.find((b) => b.name === config.backbone.name)!;
  const lossPlugin = plugins.losses.find((l) => l.name === config.loss.name)!;
  const { name: _b, ...backboneParams } = config.backbone;
  const { name: _l, ...lossParams } = config.loss;
  const bParams = backbonePlugin.params.parse(backboneParams);
  const module: Module = backbonePlugin.build({ backend, params: bParams, rng: rng.fork() });
  const embeddingDim = backbonePlugin.embeddingDim(bParams);
  const head: LossHead = lossPlugin.createHead({
    backend, numClasses, embeddingDim, params: parseLossParams(lossPlugin, lossParams), rng: rng.fork(),
  });
  const trainable = [...module.parameters, ...head.parameters].filter((p) => p.tensor.requiresGrad);
  const o = config.optimizer;
  const optimizer: Optimizer = o.name === 'sgd'
    ? sgd(trainable, { momentum: o.momentum, weightDecay: o.weightDecay, nesterov: o.nesterov })
    : adamw(trainable, { beta1: o.beta1, beta2: o.beta2, weightDecay: o.weightDecay });
  const inputShape = backbonePlugin.inputShape(bParams);
  return { module, head, optimizer, trainable, embeddingDim, inputShape };
}

/** Every tensor a checkpoint holds: backbone, head and optimizer state. */
export function checkpointTensors(module: Module, head: LossHead, optimizer: Optimizer): NamedTensor[] {
  return [
    ...module.parameters.map((p) => ({ name: `backbone.${p.name}`, tensor: p.tensor })),
    ...module.buffers.map((p) => ({ name: `backbone.${p.name}`, tensor: p.tensor })),
    ...head.parameters.map((p) => ({ name: `head.${p.name}`, tensor: p.tensor })),
    ...head.buffers.map((p) => ({ name: `head.${p.name}`, tensor: p.tensor })),
    ...optimizer.state(),
  ];
}

export async function train(config: TrainConfig, o: TrainOptions): Promise<TrainResult> {
  const print = o.print ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { backend } = o;
  const out = config.output;
  await mkdir(out, { recursive: true });
  const logPath = join(out, 'log.jsonl');
  const checkpointPath = join(out, CHECKPOINT_FILE);

  // Data.
  const trainSet = await openTrainingSet(config);
  const verificationSets = await openVerificationSets(config);
  const steps = totalSteps(config, trainSet.length);

  // Model, loss head, optimizer, schedule.
  const run = buildRun(config, o.plugins, backend, trainSet.numClasses);
  const { module, head, optimizer, trainable, embeddingDim } = run;
  const [c, h, w] = run.inputShape;
  if (trainSet.shape[1] !== h || trainSet.shape[2] !== w) {
    throw new DataError(`training images are ${trainSet.shape[2]}x${trainSet.shape[1]}, backbone ${config.backbone.name} takes ${w}x${h}: set the backbone's inputSize or the data size`);
  }
  const schedule = createSchedule(config.schedule, config.optimizer.lr, steps);
  const saved = checkpointTensors(module, head, optimizer);

  let step = 0;
  const losses: LogEntry[] = [];
  const evaluations: TrainResult['evaluations'] = [];
  if (o.resume) {
    const bytes = await readFile(checkpointPath).catch(() => {
      throw new DataError(`--resume: no checkpoint at ${checkpointPath}`);
    });
    const meta = restoreCheckpoint(bytes, saved, { source: checkpointPath });
    step = Number(meta.step);
    optimizer.setSteps(Number(meta.optimizerSteps));
    losses.push(...(JSON.parse(meta.losses ?? '[]') as LogEntry[]));
    evaluations.push(...(JSON.parse(meta.evaluations ?? '[]') as TrainResult['evaluations']));
    print(`resumed at step ${step} from ${checkpointPath}`);
  } else {
    await writeFile(logPath, '');
  }

  const saveCheckpoint = async () => {
    const bytes = await serializeCheckpoint({
      tensors: saved,
      metadata: {
        step: String(step),
        optimizerSteps: String(optimizer.steps),
        config: JSON.stringify(config),
        losses: JSON.stringify(losses),
        evaluations: JSON.stringify(evaluations.map((e) => ({ step: e.step, results: e.results.map(slimReport) }))),
      },
    });
    await writeFileAtomic(checkpointPath, bytes);
  };

  const evaluate = async () => {
    const results: VerificationReport[] = [];
    for (const set of verificationSets) {
      const r = await evaluateModel(backend, module, set, embeddingDim);
      results.push(r);
      print(`step ${step}: ${formatReport(r)}`);
    }
    if (results.length) {
      evaluations.push({ step, results });
      await appendFile(logPath, `${JSON.stringify({ step, eval: results.map(slimReport) })}\n`);
    }
  };

  print(`backend: ${o.backendReason}`);
  print(`training ${config.backbone.name} with ${config.loss.name} on ${trainSet.length} images of ${trainSet.numClasses} identities for ${steps} steps of ${config.batchSize}`);
  const progress = new Progress(steps, step);
  let interrupted = false;
  const stopAt = o.stopAfter !== undefined ? Math.min(steps, step + o.stopAfter) : steps;
  let next: Promise<Batch> | null = step < stopAt ? loadBatch(trainSet, config.seed, step, config.batchSize, config.data.flip) : null;
  let lastLoss = NaN;

  while (step < stopAt) {
    // Data: this step's batch, and start loading the next one.
    const started = performance.now();
    const batch = await next!;
    next = step + 1 < stopAt ? loadBatch(trainSet, config.seed, step + 1, config.batchSize, config.data.flip) : null;
    const lr = schedule(step);

    // Forward, loss, backward, clip: one tidy scope, so nothing of the step outlives it but the loss.
    const { loss, gradNorm } = tidy(() => {
      const x = tensor(backend, batch.images, [config.batchSize, c, h, w]);
      const embeddings = module.forward(x, { training: true, seed: config.seed * 1_000_003 + step });
      const loss = head.forward(embeddings, batch.labels);
      backward(loss);
      // The norm is read every step even without clipping: a NaN in any gradient shows there, while
      // the loss alone can stay finite (a max over NaN scores may drop them).
      const gradNorm = config.clipGradNorm ? clipGradNorm(trainable, config.clipGradNorm) : gradNormOf(trainable);
      return { loss, gradNorm };
    });
    const lossValue = await loss.item();
    const normValue = await gradNorm.item();
    loss.dispose();
    gradNorm.dispose();

    // A NaN or Inf loss: stop with the last good checkpoint, or skip the step.
    if (!Number.isFinite(lossValue) || !Number.isFinite(normValue)) {
      optimizer.zeroGrad();
      const what = `loss ${lossValue}, gradient norm ${normValue} at step ${step}`;
      if (config.onNonFinite === 'skip') {
        print(`skipping step ${step}: ${what}`);
        losses.push({ step, loss: lossValue, lr, gradNorm: normValue, imagesPerSecond: 0, skipped: true });
        step++;
        continue;
      }
      throw new NonFiniteLossError(`${what}; stopped. The last good checkpoint is ${checkpointPath} (if one was written); lower the learning rate or set onNonFinite: skip`);
    }

    // Step and schedule.
    optimizer.step(lr);
    optimizer.zeroGrad();
    lastLoss = lossValue;
    step++;

    // Log.
    const imagesPerSecond = (config.batchSize * 1000) / (performance.now() - started);
    const entry: LogEntry = { step, loss: lossValue, lr, gradNorm: normValue, imagesPerSecond };
    losses.push(entry);
    progress.update(step, lossValue, lr, imagesPerSecond);
    if (step % config.logEvery === 0 || step === steps) await appendFile(logPath, `${JSON.stringify(entry)}\n`);

    // Evaluate and checkpoint at their intervals.
    if (config.evalEvery && step % config.evalEvery === 0 && step < steps) await evaluate();
    if (config.checkpointEvery && step % config.checkpointEvery === 0) await saveCheckpoint();
    if (o.signal?.interrupted) {
      interrupted = true;
      break;
    }
  }
  progress.done();

  if (step >= steps && !interrupted) await evaluate();
  await saveCheckpoint();
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
  await writeReport(reportPath, { config, backend: o.backendReason, losses, evaluations, baseline });
  module.dispose();
  head.dispose();
  optimizer.dispose();
  return { steps: step, finalLoss: lastLoss, losses, evaluations, baseline, outputDir: out, reportPath, interrupted };
}

/** A report without the per-pair arrays, for logs and checkpoint metadata. */
export function slimReport(r: VerificationReport) {
  const { scores: _s, issame: _i, roc: _r, ...rest } = r;
  return rest;
}

export async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}
