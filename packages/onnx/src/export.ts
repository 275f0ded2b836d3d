/**
 * ONNX export by tracing: the module runs one evaluation forward on its own backend while every
 * kernel call is recorded; each call becomes an ONNX node, and the module's named tensors become
 * initializers under their PyTorch-style names. Any backbone written with @fr/core's layer ops
 * exports this way, without a per-architecture converter.
 */
import {
  FormatError, noGrad, tensor, tidy, type Backbone, type BatchNormParams, type BinaryOp, type ChannelLayout,
  type Conv2dParams, type KernelTable, type MatmulParams, type Module, type NamedTensor, type UnaryOp,
} from '@fr/core';
import { model, node, tensorProto, valueInfo, type AttributeValue, type NodeSpec, type ProtoWriter } from './protobuf.js';

export interface OnnxExportOptions {
  /** Input shape without the batch dimension, [channels, height, width]. */
  inputShape: readonly [number, number, number];
  /** Graph input name (default "input"). */
  inputName?: string;
  /** Graph output name (default "embedding"). */
  outputName?: string;
  /** Name of the graph (default "fr-backbone"). */
  graphName?: string;
  /** Default-domain opset (default 17). */
  opset?: number;
  /** Free text stored in the model's doc_string (for example the backbone's options as JSON). */
  docString?: string;
}

const UNARY_OPS: Partial<Record<UnaryOp, string>> = {
  relu: 'Relu', exp: 'Exp', log: 'Log', sqrt: 'Sqrt', abs: 'Abs', neg: 'Neg', tanh: 'Tanh', sigmoid: 'Sigmoid',
};
const BINARY_OPS: Partial<Record<BinaryOp, string>> = { add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div', max: 'Max', min: 'Min' };

interface Value {
  name: string;
  /** Rank of the value, for ops whose ONNX form depends on it (PRelu slopes, Flatten). */
  rank: number;
}

/** Builds the graph from kernel calls. */
class GraphRecorder {
  readonly nodes: ProtoWriter[] = [];
  readonly initializers: ProtoWriter[] = [];
  private values = new Map<unknown, Value>();
  private params = new Map<unknown, { name: string; shape: readonly number[]; data: Float32Array }>();
  private emitted = new Set<string>();
  private count = 0;

  constructor(tensors: readonly { name: string; shape: readonly number[]; data: Float32Array; buffer: unknown }[]) {
    for (const t of tensors) this.params.set(t.buffer, t);
  }

  setValue(buffer: unknown, v: Value): void {
    this.values.set(buffer, v);
  }

  valueOf(buffer: unknown): Value | undefined {
    return this.values.get(buffer);
  }

  /** Tensors outside the module a kernel read as constants (see `input`), read back after the trace. */
  readonly constants = new Map<unknown, { name: string; dims: readonly number[] }>();

  /**
   * The graph name of an activation or of a parameter (emitted as an initializer, reshaped if
   * asked). With `constantDims`, a tensor that is none of these (a constant the module keeps
   * outside its named tensors, such as the unit statistics of a per-channel affine map) becomes an
   * initializer of those dimensions.
   */
  input(buffer: unknown, kernel: string, shape?: readonly number[], constantDims?: readonly number[]): string {
    const v = this.values.get(buffer);
    if (v) return v.name;
    const p = this.params.get(buffer);
    if (!p && constantDims) {
      const known = this.constants.get(buffer);
      if (known) return known.name;
      const name = `constant_${this.count++}`;
      this.constants.set(buffer, { name, dims: constantDims });
      return name;
    }
    if (!p) throw new FormatError(`onnx export: ${kernel} reads a tensor that is neither the input, a module tensor nor an earlier result`);
    const dims = shape ?? p.shape;
    const name = shape && shape.join(',') !== p.shape.join(',') ? `${p.name}:${dims.join('x')}` : p.name;
    if (!this.emitted.has(name)) {
      this.emitted.add(name);
      this.initializers.push(tensorProto(name, dims, p.data));
    }
    return name;
  }

  isParam(buffer: unknown): boolean {
    return this.params.has(buffer) && !this.values.has(buffer);
  }

  constant(prefix: string, dims: readonly number[], data: Float32Array | BigInt64Array): string {
    const name = `${prefix}_${this.count++}`;
    this.initializers.push(tensorProto(name, dims, data));
    return name;
  }

  /** Adds a node whose single output is written into `outBuffer` with rank `rank`. */
  add(opType: string, inputs: string[], outBuffer: unknown, rank: number, attributes?: Record<string, AttributeValue>): void {
    const name = `/${opType}_${this.count++}`;
    const output = `${name}_output`;
    const spec: NodeSpec = { opType, inputs, outputs: [output], name, attributes };
    this.nodes.push(node(spec));
    this.values.set(outBuffer, { name: output, rank });
  }

  /** A node with an intermediate output, returning its name. */
  addIntermediate(opType: string, inputs: string[], attributes?: Record<string, AttributeValue>): string {
    const name = `/${opType}_${this.count++}`;
    const output = `${name}_output`;
    this.nodes.push(node({ opType, inputs, outputs: [output], name, attributes }));
    return output;
  }

  rankOf(buffer: unknown, kernel: string): number {
    const v = this.values.get(buffer);
    if (v) return v.rank;
    const p = this.params.get(buffer);
    if (p) return p.shape.length;
    throw new FormatError(`onnx export: ${kernel} reads an unknown tensor`);
  }
}

type AnyKernels = KernelTable<unknown>;

/** Recording versions of the kernels an evaluation forward may call; the rest refuse. */
function recordingKernels(g: GraphRecorder): Partial<AnyKernels> {
  return {
    conv2d(x, w, out, p: Conv2dParams) {
      g.add('Conv', [g.input(x, 'conv2d'), g.input(w, 'conv2d')], out, 4, {
        kernel_shape: [p.kernelH, p.kernelW],
        strides: [p.strideH, p.strideW],
        pads: [p.padH, p.padW, p.padH, p.padW],
        dilations: [1, 1],
        group: p.groups,
      });
    },
    batchNorm(x, gamma, beta, mean, variance, out, p: BatchNormParams) {
      if (p.training) throw new FormatError('onnx export: batch norm ran in training mode; export traces an evaluation forward');
      const rank = g.rankOf(x, 'batchNorm');
      const c = [p.channels];
      g.add('BatchNormalization', [
        g.input(x, 'batchNorm'), g.input(gamma, 'batchNorm', undefined, c), g.input(beta, 'batchNorm', undefined, c),
        g.input(mean, 'batchNorm', undefined, c), g.input(variance, 'batchNorm', undefined, c),
      ], out, rank, {
        epsilon: { float: p.eps },
      });
    },
    prelu(x, slope, out, p: ChannelLayout) {
      const rank = g.rankOf(x, 'prelu');
      // ONNX PRelu broadcasts the slope from the right: [C, 1, 1] for NCHW.
      const slopeShape = [p.channels, ...Array<number>(Math.max(0, rank - 2)).fill(1)];
      g.add('PRelu', [g.input(x, 'prelu'), g.input(slope, 'prelu', slopeShape)], out, rank);
    },
    matmul(a, b, out, p: MatmulParams) {
      if (p.beta !== 0) throw new FormatError('onnx export: matmul accumulating into its output has no ONNX mapping here');
      const attrs: Record<string, AttributeValue> = { transA: p.transA ? 1 : 0, transB: p.transB ? 1 : 0 };
      if (p.alpha !== 1) attrs.alpha = { float: p.alpha };
      g.add('Gemm', [g.input(a, 'matmul'), g.input(b, 'matmul')], out, 2, attrs);
    },
    addRowVector(x, v, out) {
      g.add('Add', [g.input(x, 'addRowVector'), g.input(v, 'addRowVector')], out, g.rankOf(x, 'addRowVector'));
    },
    binary(op, a, b, out) {
      const onnx = BINARY_OPS[op];
      if (!onnx) throw new FormatError(`onnx export: binary op ${op} has no ONNX mapping`);
      g.add(onnx, [g.input(a, op), g.input(b, op)], out, Math.max(g.rankOf(a, op), g.rankOf(b, op)));
    },
    unary(op, a, out) {
      const onnx = UNARY_OPS[op];
      if (!onnx) throw new FormatError(`onnx export: unary op ${op} has no ONNX mapping`);
      g.add(onnx, [g.input(a, op)], out, g.rankOf(a, op));
    },
    affine(a, out, _n, alpha, beta) {
      const scaled = g.addIntermediate('Mul', [g.input(a, 'affine'), g.constant('alpha', [], Float32Array.of(alpha))]);
      g.add('Add', [scaled, g.constant('beta', [], Float32Array.of(beta))], out, g.rankOf(a, 'affine'));
    },
    copy(src, dst, n, srcOffset, dstOffset) {
      if (srcOffset !== 0 || dstOffset !== 0) throw new FormatError('onnx export: partial copies have no ONNX mapping');
      // In a backbone a whole-tensor copy is a reshape, and the only reshape is flatten to [N, -1].
      const rank = g.rankOf(src, 'copy');
      void n;
      // A copy of a module tensor views a parameter as a vector (the onnx backbone's per-channel operands).
      if (g.isParam(src)) g.add('Reshape', [g.input(src, 'copy'), g.constant('vector', [1], BigInt64Array.of(-1n))], dst, 1);
      else if (rank > 2) g.add('Flatten', [g.input(src, 'copy')], dst, 2, { axis: 1 });
      else g.add('Identity', [g.input(src, 'copy')], dst, rank);
    },
    globalAvgPool(x, out) {
      const pooled = g.addIntermediate('GlobalAveragePool', [g.input(x, 'globalAvgPool')]);
      g.add('Flatten', [pooled], out, 2, { axis: 1 });
    },
    l2normalizeRows(x, y, _norms, _rows, _cols, _eps) {
      g.add('LpNormalization', [g.input(x, 'l2normalizeRows')], y, 2, { axis: 1, p: 2 });
    },
  };
}

/**
 * Writes the evaluation graph of `module` (batch norm with running statistics, no dropout) as an
 * ONNX model with a dynamic batch dimension. The module's tensors must live on one backend.
 */
export async function exportOnnx(module: Module, options: OnnxExportOptions): Promise<Uint8Array> {
  const named: NamedTensor[] = [...module.parameters, ...module.buffers];
  if (named.length === 0) throw new FormatError('onnx export: the module has no tensors');
  const backend = named[0].tensor.backend;
  const tensors = await Promise.all(named.map(async ({ name, tensor: t }) => ({
    name, shape: t.shape, data: (await t.data()) as Float32Array, buffer: t.buffer(),
  })));
  const g = new GraphRecorder(tensors);
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'embedding';

  const kernels = backend.kernels as unknown as Record<string, (...args: unknown[]) => unknown>;
  const recorders = recordingKernels(g) as Record<string, (...args: unknown[]) => unknown>;
  const saved = { ...kernels };
  let outDims: readonly number[] = [];
  let outName = '';
  try {
    for (const name of Object.keys(saved)) {
      const real = saved[name];
      const rec = recorders[name];
      kernels[name] = rec
        ? (...args: unknown[]) => {
            rec(...args);
            return real(...args);
          }
        : () => {
            throw new FormatError(`onnx export: kernel ${name} ran in the evaluation forward and has no ONNX mapping`);
          };
    }
    noGrad(() => tidy(() => {
      const x = tensor(backend, new Float32Array(options.inputShape.reduce((a, b) => a * b, 2)), [2, ...options.inputShape], { name: inputName });
      g.setValue(x.buffer(), { name: inputName, rank: 4 });
      const y = module.forward(x, { training: false });
      const v = g.valueOf(y.buffer());
      if (!v) throw new FormatError('onnx export: the module returned a tensor no traced kernel produced');
      outDims = y.shape.slice(1);
      outName = v.name;
    }));
  } catch (e) {
    if (e instanceof TypeError && /read.only|Cannot assign/.test(e.message)) {
      throw new FormatError(`onnx export: the ${backend.name} backend's kernel table cannot be traced (it is read-only)`);
    }
    throw e;
  } finally {
    Object.assign(kernels, saved);
  }
  for (const [buffer, c] of g.constants) {
    const data = await backend.read(buffer as never, 'float32', c.dims.reduce((a, b) => a * b, 1));
    g.initializers.push(tensorProto(c.name, c.dims, data as Float32Array));
  }
  // Name the graph output as asked.
  g.nodes.push(node({ opType: 'Identity', inputs: [outName], outputs: [outputName], name: '/output' }));
  return model({
    graphName: options.graphName ?? 'fr-backbone',
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [valueInfo(inputName, ['batch', ...options.inputShape])],
    outputs: [valueInfo(outputName, ['batch', ...outDims])],
    opset: options.opset ?? 17,
    irVersion: 8,
    producerName: '@fr/onnx',
    producerVersion: '0.1.0',
    docString: options.docString,
  });
}

/** Exports a backbone built from `backbone` with `params`: input shape and doc string come from the plugin. */
export function exportBackboneOnnx<P>(
  backbone: Backbone<P>,
  params: P,
  module: Module,
  options: Omit<OnnxExportOptions, 'inputShape'> = {},
): Promise<Uint8Array> {
  return exportOnnx(module, {
    graphName: backbone.name,
    docString: JSON.stringify({ backbone: backbone.name, params }),
    ...options,
    inputShape: backbone.inputShape(params),
  });
}
