/**
 * The `onnx` backbone: a recognition network given as an ONNX file (as torch.onnx.export writes
 * it, batch norm often folded into the convolutions), run with core ops on any backend and
 * trainable. The plugin is made with the function that reads a model file, so this package stays
 * free of Node imports: `onnxBackbone({ readModel: (path) => readFileSync(path) })`.
 */
import { defineBackbone, FormatError, z, type Backbone } from '@fr/core';
import { decodeOnnx, type OnnxModel } from './decode.js';
import { buildOnnxModule, checkOnnxModel } from './graph.js';

export const onnxBackboneParams = z.object({
  model: z.string().min(1).describe('path of the .onnx file; the graph is fed RGB NCHW scaled to [-1, 1] (x / 127.5 - 1, insightface\'s preprocessing)'),
  inputSize: z.number().int().min(16).optional().describe('side of the square input when the graph leaves height and width symbolic'),
});

export type OnnxBackboneParams = z.infer<typeof onnxBackboneParams>;

export interface OnnxBackboneOptions {
  /** Reads a model file's bytes (for example fs.readFileSync). */
  readModel: (path: string) => Uint8Array;
}

/** The input shape [C, H, W] and embedding size a model declares. */
export function onnxModelShape(m: OnnxModel, file: string, inputSize?: number): { input: [number, number, number]; embeddingDim: number } {
  const input = m.inputs.find((i) => !m.initializers.has(i.name));
  if (!input || input.dims.length !== 4) throw new FormatError(`${file}: the graph input is not an image batch [N, C, H, W]`);
  const [, c, h, w] = input.dims;
  const side = (d: number | string) => (typeof d === 'number' && d > 0 ? d : inputSize);
  const hh = side(h), ww = side(w);
  if (typeof c !== 'number' || hh === undefined || ww === undefined) {
    throw new FormatError(`${file}: the input ${input.name} is [${input.dims.join(', ')}]; give inputSize for its symbolic height and width`);
  }
  const out = m.outputs[0]?.dims ?? [];
  const dim = out[out.length - 1];
  if (out.length !== 2 || typeof dim !== 'number' || dim <= 0) throw new FormatError(`${file}: the graph output is [${out.join(', ')}], not a batch of embeddings [N, D]`);
  return { input: [c, hh, ww], embeddingDim: dim };
}

/** The `onnx` backbone plugin; parsed models are cached by path. */
export function onnxBackbone(options: OnnxBackboneOptions): Backbone<OnnxBackboneParams, 'onnx'> {
  const cache = new Map<string, OnnxModel>();
  const load = (path: string): OnnxModel => {
    let m = cache.get(path);
    if (!m) {
      let bytes: Uint8Array;
      try {
        bytes = options.readModel(path);
      } catch (e) {
        throw new FormatError(`${path}: cannot read the ONNX model (${(e as Error).message})`);
      }
      m = decodeOnnx(bytes, path);
      checkOnnxModel(m, path);
      cache.set(path, m);
    }
    return m;
  };
  return defineBackbone({
    name: 'onnx',
    description: 'an ONNX recognition network (torch.onnx.export), run with core ops and trainable',
    params: onnxBackboneParams,
    inputShape: (p) => onnxModelShape(load(p.model), p.model, p.inputSize).input,
    embeddingDim: (p) => onnxModelShape(load(p.model), p.model, p.inputSize).embeddingDim,
    build: ({ backend, params, rng }) => buildOnnxModule(load(params.model), params.model, backend, rng),
  });
}
