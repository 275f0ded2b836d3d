/**
 * @fr/iresnet: the improved ResNets (iResNet 18/34/50/100) of insightface arcface_torch
 * (recognition/arcface_torch/backbones/iresnet.py), with the same layers, tensor names and
 * initialisation.
 */
import { z } from '@fr/core';
import {
  add, defineBackbone, flatten, layerBuilder, normalInit, sequential, type Backbone, type Initializer, type Layer,
  type LayerBuilder, type Module,
} from '@fr/core';

/** Blocks per stage, by depth (insightface's iresnet18/34/50/100). */
export const IRESNET_LAYERS = {
  18: [2, 2, 2, 2],
  34: [3, 4, 6, 3],
  50: [3, 4, 14, 3],
  100: [3, 13, 30, 3],
} as const satisfies Record<number, readonly [number, number, number, number]>;

export type IResNetDepth = keyof typeof IRESNET_LAYERS;

export const iresnetParams = z.object({
  depth: z
    .union([z.literal(18), z.literal(34), z.literal(50), z.literal(100)])
    .default(50)
    .describe('Number of layers: 18, 34, 50 or 100 (insightface r18, r34, r50, r100)'),
  inputSize: z
    .number()
    .int()
    .min(16)
    .multipleOf(16)
    .default(112)
    .describe('Side of the square RGB input in pixels; four stride-2 stages divide it by 16 (112 gives the 7x7 map of the reference)'),
  embeddingDim: z.number().int().positive().default(512).describe('Size of the output embedding (num_features)'),
  dropout: z.number().min(0).max(1).default(0).describe('Dropout probability on the flattened feature map before fc (insightface uses 0)'),
  width: z
    .number()
    .positive()
    .default(1)
    .describe('Channel multiplier of the four stages (64, 128, 256, 512 times width, rounded); 1 is the reference'),
  zeroInitResidual: z
    .boolean()
    .default(false)
    .describe("Start each block's bn2 scale at 0, as insightface's zero_init_residual option does"),
});

export type IResNetParams = z.infer<typeof iresnetParams>;

/** insightface initialises every convolution with N(0, 0.1). */
const convInit: Initializer = (rng, shape) => normalInit(rng, shape.reduce((a, b) => a * b, 1), 0, 0.1);

function stageChannels(p: IResNetParams): number[] {
  return [64, 128, 256, 512].map((c) => Math.max(1, Math.round(c * p.width)));
}

/** IBasicBlock: bn1 - conv1 3x3 - bn2 - prelu - conv2 3x3 (stride) - bn3, plus identity or downsample. */
function basicBlock(b: LayerBuilder, inplanes: number, planes: number, stride: number, zeroInit: boolean): Layer {
  const conv3 = (name: string, cin: number, s: number) =>
    b.conv2d(name, { inChannels: cin, outChannels: planes, kernel: 3, stride: s, padding: 1, init: convInit });
  const body = sequential(
    b.batchNorm('bn1', inplanes),
    conv3('conv1', inplanes, 1),
    b.batchNorm('bn2', planes, { initialScale: zeroInit ? 0 : 1 }),
    b.prelu('prelu', planes),
    conv3('conv2', planes, stride),
    b.batchNorm('bn3', planes),
  );
  let downsample: Layer | null = null;
  if (stride !== 1 || inplanes !== planes) {
    const d = b.scope('downsample');
    downsample = sequential(
      d.conv2d(0, { inChannels: inplanes, outChannels: planes, kernel: 1, stride, init: convInit }),
      d.batchNorm(1, planes),
    );
  }
  return { forward: (x, mode) => add(body.forward(x, mode), downsample ? downsample.forward(x, mode) : x) };
}

/** Builds the network; exported for tools that want a module without the plugin wrapper. */
export function buildIResNet(b: LayerBuilder, p: IResNetParams): Module {
  const channels = stageChannels(p);
  const stem = sequential(
    b.conv2d('conv1', { inChannels: 3, outChannels: channels[0], kernel: 3, stride: 1, padding: 1, init: convInit }),
    b.batchNorm('bn1', channels[0]),
    b.prelu('prelu', channels[0]),
  );
  const blocks: Layer[] = [];
  let inplanes = channels[0];
  IRESNET_LAYERS[p.depth].forEach((count, stage) => {
    const layer = b.scope(`layer${stage + 1}`);
    for (let i = 0; i < count; i++) {
      blocks.push(basicBlock(layer.scope(i), inplanes, channels[stage], i === 0 ? 2 : 1, p.zeroInitResidual));
      inplanes = channels[stage];
    }
  });
  const side = p.inputSize / 16;
  const bn2 = b.batchNorm('bn2', inplanes);
  const drop = b.dropout(p.dropout);
  const fc = b.linear('fc', inplanes * side * side, p.embeddingDim);
  // insightface: features = BatchNorm1d with its weight fixed at 1 and requires_grad = False.
  const features = b.batchNorm('features', p.embeddingDim, { frozenScale: true });
  const body = sequential(stem, ...blocks, bn2);
  return b.module((x, mode) => features.forward(fc.forward(drop.forward(flatten(body.forward(x, mode)), mode), mode), mode));
}

/** The iResNet backbone plugin. */
export const iresnet: Backbone<IResNetParams, 'iresnet'> = defineBackbone({
  name: 'iresnet',
  description: 'iResNet-18/34/50/100 as insightface arcface_torch defines it (IBasicBlock, PReLU, BN-dropout-FC-BN head)',
  params: iresnetParams,
  inputShape: (p) => [3, p.inputSize, p.inputSize],
  embeddingDim: (p) => p.embeddingDim,
  build: ({ backend, params, rng }) => buildIResNet(layerBuilder(backend, rng), params),
});

/**
 * Parameter count (PyTorch's sum of p.numel() over model.parameters(): the frozen feature scale
 * included, running statistics excluded), computed from the options without building anything.
 */
export function iresnetParameterCount(params: Partial<IResNetParams> = {}): number {
  const p = iresnetParams.parse(params);
  const ch = stageChannels(p);
  const bn = (c: number) => 2 * c;
  let n = 3 * ch[0] * 9 + bn(ch[0]) + ch[0];
  let inp = ch[0];
  IRESNET_LAYERS[p.depth].forEach((count, s) => {
    const c = ch[s];
    for (let i = 0; i < count; i++) {
      n += bn(inp) + inp * c * 9 + bn(c) + c + c * c * 9 + bn(c);
      if (i === 0) n += inp * c + bn(c);
      inp = c;
    }
  });
  const side = p.inputSize / 16;
  return n + bn(inp) + inp * side * side * p.embeddingDim + p.embeddingDim + bn(p.embeddingDim);
}
