/**
 * The training config: composed from the plugins the program was given (the `loss` and `backbone`
 * fields are discriminated unions over the installed plugins), read from JSON or YAML.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml, parseDocument } from 'yaml';
import { ConfigError, parseConfig, pluginUnion, scheduleSchema, z } from '@fr/core';
import { backboneField } from './backbone-field.js';
import { headSectionProblem } from './scale-head.js';
import type { Plugins } from './plugins.js';

const syntheticFields = {
  seed: z.number().int().min(0).default(0).describe('population seed of the synthetic faces'),
  size: z.number().int().min(16).max(112).default(32).describe('image side in pixels'),
  nuisance: z.number().min(0).max(2).default(1).describe('scale of pose, lighting, blur, noise and occlusion'),
};

export const trainDataSchema = z.discriminatedUnion('name', [
  z.strictObject({
    name: z.literal('synthetic'),
    ...syntheticFields,
    identities: z.number().int().positive().default(200).describe('training identities'),
    imagesPerIdentity: z.number().int().positive().default(20).describe('images per training identity'),
  }),
  z.strictObject({ name: z.literal('folder'), path: z.string().describe('folder with one sub-folder of images per identity') }),
  z.strictObject({ name: z.literal('recordio'), path: z.string().describe('folder holding insightface train.rec and train.idx') }),
]);

export const evalDataSchema = z.discriminatedUnion('name', [
  z.strictObject({
    name: z.literal('synthetic'),
    ...syntheticFields,
    label: z.string().default('synthetic').describe('name of the set in logs and reports'),
    testIdentities: z.number().int().positive().default(600).describe('held-out identities (disjoint from training)'),
    imagesPerIdentity: z.number().int().min(2).default(10).describe('images per held-out identity'),
    pairsPerFold: z.number().int().positive().default(300).describe('same (and as many different) pairs per fold'),
  }),
  z.strictObject({
    name: z.literal('bin'),
    path: z.string().describe('insightface verification file (lfw.bin, cfp_fp.bin, agedb_30.bin)'),
    label: z.string().optional().describe('name in logs; default the file name'),
  }),
]);

const optimizerSchema = z.discriminatedUnion('name', [
  z.strictObject({
    name: z.literal('sgd'),
    lr: z.number().positive().default(0.1).describe('base learning rate'),
    momentum: z.number().min(0).max(1).default(0.9),
    weightDecay: z.number().min(0).default(5e-4),
    nesterov: z.boolean().default(false),
  }),
  z.strictObject({
    name: z.literal('adamw'),
    lr: z.number().positive().default(1e-3),
    beta1: z.number().min(0).max(1).default(0.9),
    beta2: z.number().min(0).max(1).default(0.999),
    weightDecay: z.number().min(0).default(0.05),
  }),
]);

const BYTE_UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** "8GiB", "512 MiB", "1.5GB", "1000000" or "1e9 B" to bytes; null when it is not a size. */
export function parseBytes(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return null;
  const unit = BYTE_UNITS[(m[2] || 'b').toLowerCase()];
  if (unit === undefined) return null;
  const bytes = Math.floor(Number(m[1]) * unit);
  return bytes > 0 && Number.isFinite(bytes) ? bytes : null;
}

/** Bytes as a number, or a string with a unit; parsed to a number of bytes. */
const memorySizeSchema = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const bytes = parseBytes(v);
  if (bytes === null) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(v)} is not a memory size: give bytes as a number, or a number and a unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB) such as "512MiB" or "8GiB"`,
    });
    return z.NEVER;
  }
  return bytes;
});

const headSchema = z.strictObject({
  sampleRate: z.number().gt(0).max(1).default(1)
    .describe('Partial FC: fraction of the classes whose weights take part in a step (every class of the batch is kept, the rest drawn at random); 1 is the full head'),
  shards: z.number().int().min(1).max(64).default(1)
    .describe('devices the class weights are split over (contiguous ranges, as insightface); the backbone and the first shard share device 0; on the CPU the other shards run on worker threads'),
  weightPrecision: z.enum(['float32', 'float16']).default('float32')
    .describe('storage of the normalised class weights the head\'s matmuls read; float16 halves that copy and its reads (master weights, gradients and sums stay float32)'),
  logitPrecision: z.enum(['float32', 'float16']).default('float32')
    .describe('storage of the head\'s logits and their gradient (batch x classes); float16 halves them (computed and summed in float32, rounded once when stored)'),
});

/** The output folder of a config that names none. */
export const DEFAULT_OUTPUT = 'runs/train';

/** The config schema for these plugins. */
export function trainConfigSchema(plugins: Plugins) {
  return z.strictObject({
    seed: z.number().int().min(0).default(0).describe('seed of initialisation, data order, augmentation and dropout'),
    backend: z.enum(['auto', 'cpu', 'wasm', 'webgpu']).default('auto').describe('auto: a hardware WebGPU adapter if there is one, else wasm, else cpu'),
    plugins: z.array(z.string().min(1)).default([])
      .describe('modules whose losses and backbones (made by defineLoss and defineBackbone) join the built-in ones: package names or paths, resolved from the config file\'s folder as an import written there'),
    output: z.string().default(DEFAULT_OUTPUT).describe('folder for the log, checkpoints and report'),
    data: z.strictObject({
      train: trainDataSchema,
      eval: z.array(evalDataSchema).default([]).describe('verification sets evaluated during and after training'),
      flip: z.boolean().default(true).describe('random horizontal flip'),
    }),
    backbone: backboneField(plugins),
    loss: pluginUnion('loss', plugins.losses),
    optimizer: optimizerSchema.default({ name: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: false }),
    schedule: scheduleSchema.default({ name: 'poly', warmupSteps: 0, power: 2 }),
    batchSize: z.number().int().positive().default(128),
    steps: z.number().int().positive().optional().describe('training steps (or give epochs)'),
    epochs: z.number().positive().optional().describe('passes over the training set (or give steps)'),
    clipGradNorm: z.number().positive().nullable().default(5).describe('max global gradient norm; null disables'),
    logEvery: z.number().int().positive().default(10),
    evalEvery: z.number().int().positive().nullable().default(null).describe('steps between evaluations; null: only at the end'),
    checkpointEvery: z.number().int().positive().nullable().default(null).describe('steps between checkpoints; null: only at the end'),
    onNonFinite: z.enum(['stop', 'skip']).default('stop').describe('a NaN or Inf loss stops the run (keeping the last checkpoint) or skips the step'),
    lossScale: z.union([
      z.number().positive().describe('a static scale'),
      z.strictObject({
        mode: z.literal('dynamic'),
        initial: z.number().positive().default(65536),
        growthInterval: z.number().int().positive().default(2000),
      }),
    ]).optional().describe('loss scaling: the loss and every gradient multiplied by the scale, unscaled before clipping and the step; '
      + 'a step whose gradients overflow is skipped (dynamic: and the scale halved; it doubles after growthInterval good steps)'),
    activationPrecision: z.enum(['float32', 'float16']).default('float32')
      .describe('storage of the backbone activations kept for the backward pass: float16 halves them (the forward computes in float32; the backward reads values rounded to float16)'),
    head: headSchema.optional().describe('the classifier head: head.sampleRate < 1 trains it with Partial FC, head.shards > 1 splits its class weights over several devices, head.weightPrecision float16 stores its normalised weights in float16'),
    memoryBudget: memorySizeSchema.optional()
      .describe('bytes the run may use on each device (a number, or a string such as "8GiB"); default the machine\'s memory on the CPU (shared by CPU shards), unlimited on WebGPU (its buffer limits are still checked)'),
  }).refine((c) => (c.steps === undefined) !== (c.epochs === undefined), { message: 'give exactly one of steps and epochs', path: ['steps'] })
    .superRefine((c, ctx) => {
      if (!c.loss?.name || !c.optimizer?.name) return; // reported by their own fields
      const problem = headSectionProblem(c.head ?? {}, c.loss, c.optimizer.name, plugins);
      if (problem) ctx.addIssue({ code: 'custom', path: ['head', problem.field], message: problem.message });
    });
}

/** A plugin's entry in a config: its name and its parameters. */
export type PluginConfig = { name: string } & Record<string, unknown>;

export type TrainConfig = Omit<z.infer<ReturnType<typeof trainConfigSchema>>, 'loss' | 'backbone'> & {
  loss: PluginConfig;
  backbone: PluginConfig;
};

/**
 * Reads a JSON or YAML config file and validates it against the given plugins; errors name the file
 * and every bad field. (`loadConfigWithPlugins` also loads the modules of its `plugins:` list.)
 */
export async function loadConfig(path: string, plugins: Plugins, overrides: Record<string, unknown> = {}): Promise<TrainConfig> {
  const raw = await readConfigFile(path);
  return parseConfig(trainConfigSchema(plugins), { ...(raw as object), ...overrides }, path) as TrainConfig;
}

/** The content of a JSON or YAML config file, not yet validated. */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config ${path}: ${(e as Error).message}`);
  }
  // JSON.parse keeps the last of two equal keys without a word; YAML (a superset of JSON) refuses them.
  const duplicate = parseDocument(text).errors.find((e) => e.code === 'DUPLICATE_KEY');
  if (duplicate) throw new ConfigError(`config ${path} has a duplicate key ${duplicateKeyName(text, duplicate.linePos?.[0])}: ${duplicate.message}`);
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new ConfigError(`config ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`config ${path} is ${raw === null || raw === undefined ? 'empty' : 'not a mapping of keys to values'}`);
  }
  return raw;
}

/** The key at a (1-based) line and column of a config's text, quoted; empty when there is none. */
function duplicateKeyName(text: string, at: { line: number; col: number } | undefined): string {
  const rest = at ? (text.split('\n')[at.line - 1] ?? '').slice(at.col - 1) : '';
  const key = /^\s*(?:"([^"]*)"|'([^']*)'|([^\s:,{}]+))\s*:/.exec(rest);
  return key ? JSON.stringify(key[1] ?? key[2] ?? key[3]) : '';
}

/** Total steps of a run. */
export function totalSteps(config: TrainConfig, trainLength: number): number {
  return config.steps ?? Math.max(1, Math.ceil(((config.epochs ?? 1) * trainLength) / config.batchSize));
}
