/**
 * @fr/smallnet: a small, fast network for demos, tests and examples on a CPU. It is not a
 * published architecture: a few conv3x3(stride 2)-BN-PReLU stages, then the head of insightface's
 * iResNet (BN, flatten, dropout, linear, BatchNorm1d with a frozen unit scale). At 32x32 input it
 * trains a batch of 32 in a fraction of a second on the CPU backend.
 */
import { z } from '@fr/core';
import {
  ConfigError, defineBackbone, flatten, kaimingNormal, layerBuilder, sequential, type Backbone, type Initializer, type Layer,
  type LayerBuilder, type Module,
} from '@fr/core';

export const smallNetParams = z.object({
  inputSize: z
    .number()
    .int()
    .min(8)
    .default(32)
    .describe('Side of the square RGB input in pixels (32 or 64 are typical); must divide by 2^stages'),
  embeddingDim: z.number().int().positive().default(128).describe('Size of the output embedding'),
  stages: z.number().int().min(1).max(5).default(4).describe('Number of conv3x3(stride 2)-BN-PReLU stages'),
  width: z
    .number()
    .int()
    .positive()
    .default(16)
    .describe('Channels of the first stage; each further stage doubles them (16 gives 16-32-64-128)'),
  dropout: z.number().min(0).max(1).default(0).describe('Dropout probability before the embedding layer'),
});

export type SmallNetParams = z.infer<typeof smallNetParams>;

// Checked here rather than with a zod refinement: config unions extend this schema, and zod
// refuses to extend a refined object.
function checkSize(p: SmallNetParams): void {
  if (p.inputSize % 2 ** p.stages !== 0) {
    throw new ConfigError(`smallnet: inputSize ${p.inputSize} must divide by 2^stages = ${2 ** p.stages} (each stage halves the map)`);
  }
}

/** He initialisation for the PReLU that follows each conv (its initial slope is 0.25). */
const convInit: Initializer = (rng, shape) => kaimingNormal(rng, shape, { negativeSlope: 0.25 });

/** Builds the network; exported for tools that want a module without the plugin wrapper. */
export function buildSmallNet(b: LayerBuilder, p: SmallNetParams): Module {
  checkSize(p);
  const stages: Layer[] = [];
  let channels = 3;
  for (let s = 0; s < p.stages; s++) {
    const out = p.width * 2 ** s;
    const l = b.scope(`stage${s + 1}`);
    stages.push(sequential(
      l.conv2d('conv', { inChannels: channels, outChannels: out, kernel: 3, stride: 2, padding: 1, init: convInit }),
      l.batchNorm('bn', out),
      l.prelu('prelu', out),
    ));
    channels = out;
  }
  const side = p.inputSize / 2 ** p.stages;
  const trunk = sequential(...stages, b.batchNorm('bn2', channels));
  const drop = b.dropout(p.dropout);
  const fc = b.linear('fc', channels * side * side, p.embeddingDim);
  const features = b.batchNorm('features', p.embeddingDim, { frozenScale: true });
  return b.module((x, mode) => features.forward(fc.forward(drop.forward(flatten(trunk.forward(x, mode)), mode), mode), mode));
}

/** The SmallNet backbone plugin. */
export const smallnet: Backbone<SmallNetParams, 'smallnet'> = defineBackbone({
  name: 'smallnet',
  description: 'A small conv3x3(stride 2)-BN-PReLU network with an iResNet-style head, for demos and tests on a CPU',
  params: smallNetParams,
  inputShape: (p) => [3, p.inputSize, p.inputSize],
  embeddingDim: (p) => p.embeddingDim,
  build: ({ backend, params, rng }) => buildSmallNet(layerBuilder(backend, rng), params),
});

/** Parameter count (the frozen feature scale included, running statistics excluded), from the options. */
export function smallNetParameterCount(params: Partial<SmallNetParams> = {}): number {
  const p = smallNetParams.parse(params);
  checkSize(p);
  let n = 0, c = 3;
  for (let s = 0; s < p.stages; s++) {
    const out = p.width * 2 ** s;
    n += out * c * 9 + 3 * out;
    c = out;
  }
  const side = p.inputSize / 2 ** p.stages;
  return n + 2 * c + c * side * side * p.embeddingDim + p.embeddingDim + 2 * p.embeddingDim;
}
