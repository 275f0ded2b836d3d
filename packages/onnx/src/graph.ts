/**
 * Runs an ONNX recognition graph with @fr/core's ops, so it runs on every backend and trains: its
 * float initializers become parameters (batch norm's running statistics buffers), and each node
 * maps onto core ops with their backward rules. Shape arithmetic (Shape, Gather, Unsqueeze,
 * Concat feeding a Reshape, as torch.onnx.export writes `x.view(x.size(0), -1)`) is computed on
 * the host from the tensors' shapes at each forward, never on the device.
 */
import {
  add, addRowVector, batchNorm, conv2d, dropout, FormatError, globalAvgPool, keep, layerBuilder, matmul, mul, prelu, relu, reshape,
  scale, ShapeError, sub, tensor, type Backend, type ForwardMode, type Module, type Rng, type Tensor,
} from '@fr/core';
import type { OnnxModel, OnnxNode, OnnxTensor } from './decode.js';

/** The ops an ONNX backbone runs: those of the field's recognition networks. */
export const SUPPORTED_OPS = [
  'Conv', 'BatchNormalization', 'PRelu', 'Relu', 'Add', 'Sub', 'Mul', 'Flatten', 'Gemm', 'MatMul', 'Reshape', 'Shape',
  'Gather', 'Unsqueeze', 'Concat', 'GlobalAveragePool', 'Dropout', 'Identity', 'Constant',
] as const;
export const OPSETS = { min: 9, max: 17 } as const;

/** An integer array computed on the host (shapes and indices). */
class Ints { constructor(readonly dims: number[], readonly data: number[]) {} }
type Value = Tensor | Ints;

/** Checks that a model is one this runner can execute; errors name the file, the node and the op. */
export function checkOnnxModel(m: OnnxModel, file: string): void {
  if (m.opset < OPSETS.min || m.opset > OPSETS.max) throw new FormatError(`${file}: opset ${m.opset} is not supported (opsets ${OPSETS.min} to ${OPSETS.max})`);
  for (const n of m.nodes) {
    if ((n.domain !== '' && n.domain !== 'ai.onnx') || !(SUPPORTED_OPS as readonly string[]).includes(n.opType)) {
      throw new FormatError(`${file}: node ${n.name || n.outputs[0]} uses op ${n.domain ? `${n.domain}.` : ''}${n.opType}, which the onnx backbone does not run (supported: ${SUPPORTED_OPS.join(', ')})`);
    }
  }
}

const ints = (n: OnnxNode, name: string): number[] | undefined => n.attributes.get(name)?.ints;
const int = (n: OnnxNode, name: string, fallback: number): number => n.attributes.get(name)?.i ?? fallback;
const float = (n: OnnxNode, name: string, fallback: number): number => n.attributes.get(name)?.f ?? fallback;

/**
 * Builds the module of a checked model on `backend`. `file` names the model in errors; `rng`
 * seeds nothing here (every weight comes from the file) but is part of the backbone contract.
 */
export function buildOnnxModule(m: OnnxModel, file: string, backend: Backend, rng: Rng): Module {
  checkOnnxModel(m, file);
  const b = layerBuilder(backend, rng);
  const bnStats = new Set(m.nodes.filter((n) => n.opType === 'BatchNormalization').flatMap((n) => n.inputs.slice(3, 5)));
  const constants = new Map<string, Value>();
  const owned: Tensor[] = [];
  for (const t of m.initializers.values()) {
    if (t.kind === 'int') constants.set(t.name, new Ints(t.dims, t.data as number[]));
    else if (bnStats.has(t.name)) constants.set(t.name, b.buffer(t.name, t.dims, t.data as Float32Array));
    else constants.set(t.name, b.parameter(t.name, t.dims, t.data as Float32Array));
  }
  const constantTensor = (t: OnnxTensor): Value => {
    if (t.kind === 'int') return new Ints(t.dims, t.data as number[]);
    const c = keep(tensor(backend, t.data as Float32Array, t.dims));
    owned.push(c);
    return c;
  };
  for (const n of m.nodes) {
    if (n.opType === 'Constant') {
      const t = n.attributes.get('value')?.t;
      if (!t) throw new FormatError(`${file}: Constant node ${n.name} has no tensor value`);
      constants.set(n.outputs[0], constantTensor(t));
    }
  }
  // Per-channel ones and zeros for channel-wise affine maps (conv bias, broadcast Add/Mul/Sub).
  const fills = new Map<string, Tensor>();
  const fill = (c: number, v: number) => {
    const key = `${c}:${v}`;
    let t = fills.get(key);
    // Made on first use, possibly inside a caller's tidy(): kept, and released with the module.
    if (!t) { t = keep(tensor(backend, new Float32Array(c).fill(v), [c])); fills.set(key, t); owned.push(t); }
    return t;
  };
  const graphInputs = m.inputs.filter((i) => !m.initializers.has(i.name));
  if (graphInputs.length !== 1) throw new FormatError(`${file}: the graph has ${graphInputs.length} inputs besides its initializers; a backbone takes one image batch`);
  const inputName = graphInputs[0].name;
  const outputName = m.outputs[0]?.name;
  if (!outputName) throw new FormatError(`${file}: the graph declares no output`);

  const forward = (x: Tensor, mode: ForwardMode): Tensor => {
    const env = new Map<string, Value>(constants);
    env.set(inputName, x);
    for (const n of m.nodes) {
      if (n.opType === 'Constant') continue;
      const fail = (why: string): never => {
        throw new ShapeError(`${file}: node ${n.name || n.outputs[0]} (${n.opType}): ${why}`);
      };
      const get = (i: number): Value => {
        const v = env.get(n.inputs[i]);
        if (!v) fail(`input ${n.inputs[i] || `#${i}`} is not computed before this node`);
        return v!;
      };
      const tensorIn = (i: number): Tensor => {
        const v = get(i);
        if (v instanceof Ints) return fail(`input ${n.inputs[i]} is an integer shape value, not a tensor`);
        return v;
      };
      const intsIn = (i: number): Ints => {
        const v = get(i);
        if (!(v instanceof Ints)) return fail(`input ${n.inputs[i]} must be an integer constant or a shape computation`);
        return v;
      };
      /** x scaled and shifted per channel (dimension 1), through batch norm's kernels with unit statistics. */
      const channelAffine = (x: Tensor, gamma: Tensor | null, beta: Tensor | null, negateBeta = false): Tensor => {
        const c = x.shape[1];
        const flat = (t: Tensor) => (t.rank === 1 ? t : reshape(t, [c]));
        const shift = beta ? (negateBeta ? scale(flat(beta), -1) : flat(beta)) : fill(c, 0);
        return batchNorm(x, {
          weight: gamma ? flat(gamma) : fill(c, 1), bias: shift, runningMean: fill(c, 0), runningVar: fill(c, 1),
        }, { training: false, eps: 0 });
      };
      const perChannel = (x: Tensor, p: Tensor) => x.rank >= 2 && p.size === x.shape[1] && p.rank <= x.rank
        && p.shape.every((d, i) => (p.rank - i === x.rank - 1 ? d === x.shape[1] : d === 1));
      let out: Value;
      switch (n.opType) {
        case 'Identity': out = get(0); break;
        case 'Relu': out = relu(tensorIn(0)); break;
        case 'Dropout': {
          // opset < 12: ratio attribute; later: an optional constant input.
          const ratioInput = n.inputs[1] ? env.get(n.inputs[1]) : undefined;
          const ratio = ratioInput && !(ratioInput instanceof Ints) ? fail('a ratio computed as a tensor') : float(n, 'ratio', 0.5);
          out = dropout(tensorIn(0), ratio, mode.seed ?? 0, mode.training);
          break;
        }
        case 'Conv': {
          const x = tensorIn(0), w = tensorIn(1);
          const pads = ints(n, 'pads') ?? [0, 0, 0, 0];
          if ((n.attributes.get('auto_pad')?.s ?? 'NOTSET') !== 'NOTSET') fail('auto_pad is not supported; export with explicit pads');
          if ((ints(n, 'dilations') ?? [1, 1]).some((d) => d !== 1)) fail('dilated convolutions are not supported');
          if (pads.length !== 4 || pads[0] !== pads[2] || pads[1] !== pads[3]) fail(`asymmetric pads [${pads.join(', ')}] are not supported`);
          const strides = ints(n, 'strides') ?? [1, 1];
          let y = conv2d(x, w, { stride: [strides[0], strides[1]], padding: [pads[0], pads[1]], groups: int(n, 'group', 1) });
          if (n.inputs[2]) y = channelAffine(y, null, tensorIn(2));
          out = y;
          break;
        }
        case 'BatchNormalization': {
          // ONNX's momentum weighs the running value (PyTorch's 1 - momentum); an inference export writes 1 or nothing.
          const m = float(n, 'momentum', 0.9);
          out = batchNorm(tensorIn(0), { weight: tensorIn(1), bias: tensorIn(2), runningMean: tensorIn(3), runningVar: tensorIn(4) }, {
            training: mode.training, eps: float(n, 'epsilon', 1e-5), momentum: m > 0 && m < 1 ? 1 - m : 0.1,
          });
          break;
        }
        case 'PRelu': {
          const x = tensorIn(0), slope = tensorIn(1);
          if (slope.size !== x.shape[1]) fail(`slope ${slope.describe()} is not one value per channel of ${x.describe()}`);
          out = prelu(x, slope);
          break;
        }
        case 'Add': case 'Sub': case 'Mul': {
          let a = tensorIn(0), c = tensorIn(1);
          const same = a.shape.length === c.shape.length && a.shape.every((d, i) => d === c.shape[i]);
          if (same) { out = n.opType === 'Add' ? add(a, c) : n.opType === 'Sub' ? sub(a, c) : mul(a, c); break; }
          if (n.opType !== 'Sub' && perChannel(c, a)) [a, c] = [c, a];
          if (perChannel(a, c)) {
            out = n.opType === 'Mul' ? channelAffine(a, c, null) : channelAffine(a, null, c, n.opType === 'Sub');
          } else if (n.opType === 'Add' && a.rank === 2 && c.size === a.shape[1]) {
            out = addRowVector(a, c.rank === 1 ? c : reshape(c, [c.size]));
          } else out = fail(`broadcasting ${a.describe()} with ${c.describe()} is not supported (same shapes, per-channel or row vectors are)`);
          break;
        }
        case 'Flatten': {
          const x = tensorIn(0);
          const axis = int(n, 'axis', 1);
          if (axis !== 1) fail(`axis ${axis} (only 1, a batch of vectors, is supported)`);
          out = x.rank === 2 ? x : reshape(x, [x.shape[0], x.size / x.shape[0]]);
          break;
        }
        case 'Reshape': {
          const x = tensorIn(0), target = intsIn(1).data.map((d, i) => (d === 0 ? x.shape[i] : d));
          const known = target.filter((d) => d !== -1).reduce((a, d) => a * d, 1);
          out = reshape(x, target.map((d) => (d === -1 ? x.size / known : d)));
          break;
        }
        case 'GlobalAveragePool': {
          const x = tensorIn(0);
          out = reshape(globalAvgPool(x), [x.shape[0], x.shape[1], 1, 1]);
          break;
        }
        case 'MatMul': {
          const a = tensorIn(0), w = tensorIn(1);
          if (a.rank !== 2 || w.rank !== 2) fail(`only 2-d MatMul is supported, got ${a.describe()} and ${w.describe()}`);
          out = matmul(a, w);
          break;
        }
        case 'Gemm': {
          if (int(n, 'transA', 0)) fail('transA is not supported');
          let y = matmul(tensorIn(0), tensorIn(1), { transB: int(n, 'transB', 0) === 1 });
          const alpha = float(n, 'alpha', 1), beta = float(n, 'beta', 1);
          if (alpha !== 1) y = scale(y, alpha);
          if (n.inputs[2]) {
            const c = tensorIn(2);
            if (c.size !== y.shape[1]) fail(`bias ${c.describe()} is not one value per output`);
            y = addRowVector(y, beta === 1 ? (c.rank === 1 ? c : reshape(c, [c.size])) : scale(reshape(c, [c.size]), beta));
          }
          out = y;
          break;
        }
        case 'Shape': {
          const x = get(0);
          const dims = x instanceof Ints ? x.dims : [...x.shape];
          const r = dims.length, clamp = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
          const sliced = dims.slice(clamp(int(n, 'start', 0)), clamp(int(n, 'end', r)));
          out = new Ints([sliced.length], sliced);
          break;
        }
        case 'Gather': {
          const data = intsIn(0), index = intsIn(1);
          if (data.dims.length !== 1 || int(n, 'axis', 0) !== 0) fail('only gathering from a 1-d shape value is supported');
          const pick = index.data.map((i) => data.data[i < 0 ? i + data.data.length : i]);
          out = new Ints(index.dims, pick);
          break;
        }
        case 'Unsqueeze': {
          const v = intsIn(0);
          const axes = ints(n, 'axes') ?? (n.inputs[1] ? intsIn(1).data : []);
          if (v.dims.length > 1 || axes.length !== 1 || (axes[0] !== 0 && axes[0] !== -1 - v.dims.length)) fail('only unsqueezing a shape scalar or vector to a vector is supported');
          out = new Ints(v.dims.length === 0 ? [1] : [1, ...v.dims], v.data);
          break;
        }
        case 'Concat': {
          const parts = n.inputs.map((_, i) => intsIn(i));
          if (parts.some((p) => p.dims.length !== 1)) fail('only concatenating 1-d shape values is supported');
          const data = parts.flatMap((p) => p.data);
          out = new Ints([data.length], data);
          break;
        }
        default:
          out = fail('unsupported op');
      }
      env.set(n.outputs[0], out);
    }
    const y = env.get(outputName);
    if (!(y instanceof Object) || y instanceof Ints) throw new FormatError(`${file}: the graph output ${outputName} is not a computed tensor`);
    return y as Tensor;
  };
  const module = b.module(forward);
  return {
    parameters: module.parameters,
    buffers: module.buffers,
    forward: module.forward,
    dispose: () => { module.dispose(); for (const t of owned) t.dispose(); },
  };
}
