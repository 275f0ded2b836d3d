/**
 * @fr/mobilefacenet: MobileFaceNet as insightface arcface_torch defines it
 * (recognition/arcface_torch/backbones/mobilefacenet.py, `mbf` = blocks (1, 4, 6, 2), scale 2;
 * `mbf_large` = blocks (2, 8, 12, 4), scale 4), with the same tensor names and initialisation.
 */
import { z } from '@fr/core';
import {
  add, defineBackbone, flatten, kaimingNormal, layerBuilder, sequential, type Backbone, type Initializer, type Layer,
  type LayerBuilder, type Module,
} from '@fr/core';

export const mobileFaceNetParams = z.object({
  inputSize: z
    .number()
    .int()
    .min(16)
    .multipleOf(16)
    .default(112)
    .describe('Side of the square RGB input; four stride-2 stages divide it by 16 and the GDC kernel covers the rest (7x7 at 112)'),
  embeddingDim: z.number().int().positive().default(512).describe('Size of the output embedding (num_features)'),
  blocks: z
    .tuple([z.number().int().min(1), z.number().int().min(1), z.number().int().min(1), z.number().int().min(1)])
    .default([1, 4, 6, 2])
    .describe('Residual depthwise blocks per stage: (1, 4, 6, 2) is mbf, (2, 8, 12, 4) mbf_large'),
  scale: z
    .number()
    .int()
    .positive()
    .default(2)
    .describe('Width multiplier of the main path (64 and 128 channels times scale): 2 is mbf, 4 mbf_large'),
});

export type MobileFaceNetParams = z.infer<typeof mobileFaceNetParams>;

/** insightface: kaiming_normal_(mode='fan_out', nonlinearity='relu') for every conv and linear weight. */
const fanOutInit: Initializer = (rng, shape) => kaimingNormal(rng, shape, { mode: 'fanOut' });

interface ConvSpec {
  kernel?: number;
  stride?: number;
  padding?: number;
  groups?: number;
}

/** ConvBlock: conv (no bias) - BatchNorm2d - PReLU, under `<scope>.layers.{0,1,2}`. */
function convBlock(b: LayerBuilder, inC: number, outC: number, s: ConvSpec = {}, activation = true): Layer {
  const l = b.scope('layers');
  const parts = [
    l.conv2d(0, { inChannels: inC, outChannels: outC, kernel: s.kernel ?? 1, stride: s.stride ?? 1, padding: s.padding ?? 0, groups: s.groups ?? 1, init: fanOutInit }),
    l.batchNorm(1, outC),
  ];
  if (activation) parts.push(l.prelu(2, outC));
  return sequential(...parts);
}

/** LinearBlock: conv - BatchNorm2d, no activation. */
const linearBlock = (b: LayerBuilder, inC: number, outC: number, s: ConvSpec = {}): Layer => convBlock(b, inC, outC, s, false);

/** DepthWise: 1x1 expand to `groups` channels, 3x3 depthwise (stride), 1x1 project; optional residual. */
function depthWise(b: LayerBuilder, inC: number, outC: number, groups: number, stride: number, residual: boolean): Layer {
  const l = b.scope('layers');
  const body = sequential(
    convBlock(l.scope(0), inC, groups),
    convBlock(l.scope(1), groups, groups, { kernel: 3, stride, padding: 1, groups }),
    linearBlock(l.scope(2), groups, outC),
  );
  return residual ? { forward: (x, mode) => add(x, body.forward(x, mode)) } : body;
}

/** Residual: `count` residual DepthWise blocks at stride 1. */
function residualStage(b: LayerBuilder, c: number, count: number, groups: number): Layer {
  const l = b.scope('layers');
  return sequential(...Array.from({ length: count }, (_, i) => depthWise(l.scope(i), c, c, groups, 1, true)));
}

/** Builds the network; exported for tools that want a module without the plugin wrapper. */
export function buildMobileFaceNet(b: LayerBuilder, p: MobileFaceNetParams): Module {
  const c1 = 64 * p.scale, c2 = 128 * p.scale;
  const layers = b.scope('layers');
  const stages: Layer[] = [convBlock(layers.scope(0), 3, c1, { kernel: 3, stride: 2, padding: 1 })];
  // The reference hard-codes these group counts whatever the scale.
  stages.push(
    p.blocks[0] === 1
      ? convBlock(layers.scope(1), c1, c1, { kernel: 3, stride: 1, padding: 1, groups: 64 })
      : residualStage(layers.scope(1), c1, p.blocks[0], 128),
  );
  stages.push(
    depthWise(layers.scope(2), c1, c1, 128, 2, false),
    residualStage(layers.scope(3), c1, p.blocks[1], 128),
    depthWise(layers.scope(4), c1, c2, 256, 2, false),
    residualStage(layers.scope(5), c2, p.blocks[2], 256),
    depthWise(layers.scope(6), c2, c2, 512, 2, false),
    residualStage(layers.scope(7), c2, p.blocks[3], 256),
  );
  const convSep = convBlock(b.scope('conv_sep'), c2, 512);
  // GDC: a 512-channel depthwise conv over the whole final map, flatten, linear, BatchNorm1d.
  const gdc = b.scope('features').scope('layers');
  const side = p.inputSize / 16;
  const gdcConv = linearBlock(gdc.scope(0), 512, 512, { kernel: side, groups: 512 });
  const fc = gdc.linear(2, 512, p.embeddingDim, { bias: false, init: fanOutInit });
  const bn = gdc.batchNorm(3, p.embeddingDim);
  const trunk = sequential(...stages, convSep, gdcConv);
  return b.module((x, mode) => bn.forward(fc.forward(flatten(trunk.forward(x, mode)), mode), mode));
}

/** The MobileFaceNet backbone plugin. */
export const mobilefacenet: Backbone<MobileFaceNetParams, 'mobilefacenet'> = defineBackbone({
  name: 'mobilefacenet',
  description: "MobileFaceNet as insightface arcface_torch's mbf (depthwise residual blocks, PReLU, GDC head)",
  params: mobileFaceNetParams,
  inputShape: (p) => [3, p.inputSize, p.inputSize],
  embeddingDim: (p) => p.embeddingDim,
  build: ({ backend, params, rng }) => buildMobileFaceNet(layerBuilder(backend, rng), params),
});

/** Parameter count (PyTorch's sum over model.parameters(), running statistics excluded), from the options. */
export function mobileFaceNetParameterCount(params: Partial<MobileFaceNetParams> = {}): number {
  const p = mobileFaceNetParams.parse(params);
  const conv = (i: number, o: number, k: number, g = 1) => (o * i * k * k) / g;
  const cb = (i: number, o: number, k: number, g = 1) => conv(i, o, k, g) + 3 * o;
  const lb = (i: number, o: number, k: number, g = 1) => conv(i, o, k, g) + 2 * o;
  const dw = (i: number, o: number, g: number) => cb(i, g, 1) + cb(g, g, 3, g) + lb(g, o, 1);
  const c1 = 64 * p.scale, c2 = 128 * p.scale;
  let n = cb(3, c1, 3) + (p.blocks[0] === 1 ? cb(c1, c1, 3, 64) : p.blocks[0] * dw(c1, c1, 128));
  n += dw(c1, c1, 128) + p.blocks[1] * dw(c1, c1, 128) + dw(c1, c2, 256) + p.blocks[2] * dw(c2, c2, 256);
  n += dw(c2, c2, 512) + p.blocks[3] * dw(c2, c2, 256);
  const side = p.inputSize / 16;
  return n + cb(c2, 512, 1) + lb(512, 512, side, 512) + 512 * p.embeddingDim + 2 * p.embeddingDim;
}
