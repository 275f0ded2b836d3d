/**
 * `fr import`: the field's pretrained models as @fr run folders, and `backbone.pretrained`.
 * A PyTorch `.pth` state_dict is written into the configured backbone under its own names; an
 * ONNX model becomes the `onnx` backbone (its graph run with core ops, its initializers trainable).
 * Either way the result is a checkpoint at step 0 whose head is freshly initialised, which
 * `fr embed`, `fr eval` and `fr export` read and `fr train --resume` fine-tunes.
 */
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { ConfigError, DataError, parseConfig, restoreCheckpoint, serializeCheckpoint, type Backend, type Module } from '@fr/core';
import { writeFileAtomic } from '@fr/core/node';
import { loadStateDict, readTorchStateDict, type BatchCounters } from '@fr/data';
import { trainConfigSchema, type TrainConfig } from './config.js';
import { openTrainingSet } from './data.js';
import { loadConfigWithPlugins } from './plugin-config.js';
import type { Plugins } from './plugins.js';
import { buildRun, CHECKPOINT_FILE, checkpointTensors } from './train.js';

/** The file name of the ONNX model an import copies into its run folder. */
export const ONNX_MODEL_FILE = 'backbone.onnx';

async function readModelFile(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new DataError(`${file}: cannot read (${(e as Error).message})`);
  }
}

const isOnnx = (file: string) => file.toLowerCase().endsWith('.onnx');
const isTorch = (file: string) => /\.(pth|pt)$/i.test(file);

/**
 * Writes the weights of `file` into `module`: a PyTorch `.pth`/`.pt` state_dict, or an @fr
 * checkpoint (`.safetensors`, or a run folder) whose `backbone.*` tensors are taken. Returns the
 * state_dict's `num_batches_tracked` counters (kept for `fr export`).
 */
export async function loadPretrained(module: Module, file: string, backboneName: string): Promise<BatchCounters> {
  if (isOnnx(file)) {
    throw new ConfigError(`backbone.pretrained ${file}: an ONNX model is a backbone of its own; use backbone: { name: onnx, model: ${file} }`);
  }
  if (isTorch(file)) {
    const stateDict = readTorchStateDict(await readModelFile(file), file, { inflate: (d) => inflateRawSync(d) });
    return loadStateDict(module, stateDict, file, `backbone ${backboneName}`);
  }
  const path = file.endsWith('.safetensors') ? file : join(file, CHECKPOINT_FILE);
  const into = [...module.parameters, ...module.buffers].map((t) => ({ name: `backbone.${t.name}`, tensor: t.tensor }));
  restoreCheckpoint(await readModelFile(path), into, { source: path, allowExtra: true });
  return {};
}

export interface ImportOptions {
  /** The model file: `.pth`/`.pt` (PyTorch state_dict) or `.onnx`. */
  file: string;
  /** A training config (needed for `.pth`: it names the backbone; optional for `.onnx`). */
  configPath?: string;
  /** The run folder to write. */
  out: string;
  plugins: Plugins;
  backend: Backend;
}

/** The config of an ONNX import without a config file: the model at its input size, ArcFace, synthetic data. */
function onnxConfig(model: string, out: string, base: Record<string, unknown> | null, plugins: Plugins): TrainConfig {
  const raw = base ?? { data: { train: { name: 'synthetic' } }, loss: { name: 'arcface' }, steps: 1 };
  const onnx = plugins.backbones.find((b) => b.name === 'onnx');
  if (!onnx) throw new ConfigError('fr import: the onnx backbone is not installed');
  const [, size] = onnx.inputShape(onnx.params.parse({ model }));
  const data = raw.data as { train: Record<string, unknown> };
  const train = base ? data.train : { ...data.train, size };
  return parseConfig(trainConfigSchema(plugins), { ...raw, data: { ...data, train }, backbone: { name: 'onnx', model }, output: out }, `fr import ${model}`) as TrainConfig;
}

/** `fr import`: writes `<out>/checkpoint.safetensors` (step 0) from a PyTorch or ONNX model. */
export async function importCommand(o: ImportOptions): Promise<{ checkpointPath: string; config: TrainConfig; tensors: number }> {
  let config: TrainConfig;
  let plugins = o.plugins;
  let counters: BatchCounters = {};
  await mkdir(o.out, { recursive: true });
  if (isOnnx(o.file)) {
    // The run folder keeps its own copy of the graph, which the onnx backbone reads when built.
    const model = resolve(o.out, ONNX_MODEL_FILE);
    if (resolve(o.file) !== model) await copyFile(o.file, model).catch((e: Error) => { throw new DataError(`${o.file}: cannot read (${e.message})`); });
    let base: Record<string, unknown> | null = null;
    if (o.configPath) ({ config: base, plugins } = await loadConfigWithPlugins(o.configPath, o.plugins));
    config = onnxConfig(model, o.out, base, plugins);
  } else if (isTorch(o.file)) {
    if (!o.configPath) throw new ConfigError(`fr import ${o.file}: a PyTorch state_dict holds weights only; give --config with the backbone it fits (for example mobilefacenet, inputSize 112)`);
    // The config's plugins: list is loaded as fr train would, so a plugin backbone or loss imports too.
    const loaded = await loadConfigWithPlugins(o.configPath, o.plugins, { overrides: { output: o.out } });
    plugins = loaded.plugins;
    const { pretrained: _p, ...backbone } = loaded.config.backbone;
    config = { ...loaded.config, backbone: backbone as TrainConfig['backbone'] };
  } else {
    throw new ConfigError(`fr import ${o.file}: give a PyTorch state_dict (.pth, .pt) or an ONNX model (.onnx)`);
  }
  const { numClasses } = await openTrainingSet(config);
  const run = buildRun(config, plugins, o.backend, numClasses);
  if (isTorch(o.file)) counters = await loadPretrained(run.module, o.file, config.backbone.name);
  const bytes = await serializeCheckpoint({
    tensors: checkpointTensors(run.module, run.head, run.optimizer),
    metadata: {
      step: '0',
      numClasses: String(numClasses),
      optimizerSteps: '0',
      config: JSON.stringify(config),
      losses: '[]',
      evaluations: '[]',
      importedFrom: basename(o.file),
      batchCounters: JSON.stringify(counters),
      // As fr train records them, so eval, embed, export and --resume load them again.
      plugins: JSON.stringify(plugins.sources ?? []),
    },
  });
  const checkpointPath = join(o.out, CHECKPOINT_FILE);
  await writeFileAtomic(checkpointPath, bytes);
  const tensors = run.module.parameters.length + run.module.buffers.length;
  run.module.dispose();
  run.head.dispose();
  return { checkpointPath, config, tensors };
}
