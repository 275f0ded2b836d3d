import { afterAll, describe, expect, test } from 'vitest';
import ort from 'onnxruntime-node';
import { backward, createRng, FormatError, noGrad, sum, tensor, tidy, type Backend, type Module } from '@fr/core';
import { createCpuBackend } from '@fr/backend-cpu';
import { createNodeWebGpuBackend } from '@fr/backend-webgpu/node';
import { iresnet } from '@fr/iresnet';
import { buildOnnxModule, decodeOnnx, exportBackboneOnnx, exportOnnx, onnxBackbone, onnxModelShape } from '../src/index.js';
import { model, node, ProtoWriter, tensorProto, valueInfo, type AttributeValue } from '../src/protobuf.js';

const cpu = createCpuBackend();
const gpu = await createNodeWebGpuBackend();
afterAll(() => gpu.dispose());
const backends: [string, Backend][] = [['cpu', cpu], ['webgpu', gpu]];

function random(n: number, seed: number, amplitude = 1): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * amplitude);
}

let count = 0;
const n = (opType: string, inputs: string[], outputs: string[], attributes?: Record<string, AttributeValue>) => node({ opType, inputs, outputs, name: `/${opType}_${count++}`, attributes });

/** A Constant node holding an int64 tensor (AttributeProto type TENSOR = 4). */
function intConstant(output: string, dims: number[], values: number[]): ProtoWriter {
  const attr = new ProtoWriter().string(1, 'value').message(5, tensorProto('', dims, BigInt64Array.from(values, BigInt))).int(20, 4);
  return new ProtoWriter().string(2, output).string(3, `/Constant_${count++}`).string(4, 'Constant').message(5, attr);
}

/**
 * A graph as torch.onnx.export writes a recognition network: convolutions with folded batch norm
 * (a bias), PRelu with [C, 1, 1] slopes, a residual Add, per-channel Mul/Sub, Dropout and Identity,
 * the Shape/Gather/Unsqueeze/Concat/Reshape flatten, MatMul, and Gemm with a bias.
 */
function foldedGraph(opset: number): Uint8Array {
  const init = (name: string, dims: number[], seed: number, amplitude = 0.5) => tensorProto(name, dims, random(dims.reduce((a, b) => a * b, 1), seed, amplitude));
  const unsqueezeAxes = opset >= 13 ? ['axes'] : [];
  const nodes = [
    n('Conv', ['input', 'w1', 'b1'], ['c1'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 1, dilations: [1, 1] }),
    n('PRelu', ['c1', 'slope'], ['p1']),
    n('Conv', ['p1', 'w2', 'b2'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 }),
    n('Relu', ['c2'], ['r2']),
    n('Add', ['p1', 'r2'], ['a2']),
    n('BatchNormalization', ['a2', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], ['bn'], { epsilon: { float: 1e-5 } }),
    n('Mul', ['bn', 'gamma'], ['m']),
    n('Sub', ['m', 'shift'], ['s']),
    n('Dropout', ['s'], ['d'], opset < 12 ? { ratio: { float: 0.2 } } : {}),
    n('Identity', ['d'], ['i']),
    n('Shape', ['i'], ['shape']),
    intConstant('zero', [], [0]),
    n('Gather', ['shape', 'zero'], ['batch'], { axis: 0 }),
    n('Unsqueeze', ['batch', ...unsqueezeAxes], ['batch1'], opset >= 13 ? {} : { axes: [0] }),
    intConstant('minus1', [1], [-1]),
    n('Concat', ['batch1', 'minus1'], ['flat_shape'], { axis: 0 }),
    n('Reshape', ['i', 'flat_shape'], ['flat']),
    n('MatMul', ['flat', 'fc1'], ['h']),
    n('Gemm', ['h', 'fc2', 'fc2.bias'], ['embedding'], { transB: 1, alpha: { float: 1.5 } }),
  ];
  const initializers = [
    init('w1', [4, 3, 3, 3], 1), init('b1', [4], 2), init('slope', [4, 1, 1], 3, 0.3), init('w2', [4, 1, 3, 3], 4), init('b2', [4], 5),
    init('bn.weight', [4], 6), init('bn.bias', [4], 7), init('bn.running_mean', [4], 8, 0.1),
    tensorProto('bn.running_var', [4], Float32Array.of(0.5, 1, 1.5, 2)),
    init('gamma', [1, 4, 1, 1], 9), init('shift', [4, 1, 1], 10), init('fc1', [64, 6], 11, 0.2), init('fc2', [5, 6], 12), init('fc2.bias', [5], 13),
  ];
  if (opset >= 13) initializers.push(tensorProto('axes', [1], BigInt64Array.of(0n)));
  return model({
    graphName: 'folded', nodes, initializers, inputs: [valueInfo('input', ['N', 3, 8, 8])], outputs: [valueInfo('embedding', ['N', 5])],
    opset, irVersion: 7, producerName: 'test', producerVersion: '0',
  });
}

async function runOnnx(bytes: Uint8Array, data: Float32Array, dims: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, dims) });
  return out[session.outputNames[0]].data as Float32Array;
}

async function runModule(module: Module, backend: Backend, data: Float32Array, dims: number[]): Promise<Float32Array> {
  const y = noGrad(() => tidy(() => module.forward(tensor(backend, data, dims), { training: false })));
  const out = (await y.data()) as Float32Array;
  y.dispose();
  return out;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('the onnx backbone runs graphs as onnxruntime does', () => {
  for (const opset of [9, 11, 13, 17]) {
    for (const [name, backend] of backends) {
      test(`folded-BN graph, opset ${opset}, ${name}`, async () => {
        const bytes = foldedGraph(opset);
        const m = decodeOnnx(bytes, 'folded.onnx');
        expect(m.opset).toBe(opset);
        expect(onnxModelShape(m, 'folded.onnx')).toEqual({ input: [3, 8, 8], embeddingDim: 5 });
        const module = buildOnnxModule(m, 'folded.onnx', backend, createRng(0));
        // Running statistics are buffers, everything else trainable.
        expect(module.buffers.map((b) => b.name)).toEqual(['bn.running_mean', 'bn.running_var']);
        const data = random(3 * 3 * 8 * 8, 20);
        const want = await runOnnx(bytes, data, [3, 3, 8, 8]);
        const got = await runModule(module, backend, data, [3, 3, 8, 8]);
        expect(got).toHaveLength(15);
        expect(maxDiff(got, want)).toBeLessThan(2e-5);
        module.dispose();
      });
    }
  }

  test('an imported graph exports back to ONNX (folded biases as batch norm with unit statistics) and runs in onnxruntime', async () => {
    const bytes = foldedGraph(11);
    const module = buildOnnxModule(decodeOnnx(bytes, 'folded.onnx'), 'folded.onnx', cpu, createRng(0));
    const again = await exportOnnx(module, { inputShape: [3, 8, 8] });
    const data = random(2 * 3 * 8 * 8, 22);
    expect(maxDiff(await runOnnx(again, data, [2, 3, 8, 8]), await runOnnx(bytes, data, [2, 3, 8, 8]))).toBeLessThan(2e-5);
    module.dispose();
  });

  test('an exported iResNet-18 runs as the native module, and its gradients match', async () => {
    const params = iresnet.params.parse({ depth: 18, inputSize: 32, embeddingDim: 16 });
    const native = iresnet.build({ backend: cpu, params, rng: createRng(3) });
    const bytes = await exportBackboneOnnx(iresnet, params, native);
    const plugin = onnxBackbone({ readModel: () => bytes });
    const p = plugin.params.parse({ model: 'r18.onnx' });
    expect(plugin.inputShape(p)).toEqual([3, 32, 32]);
    expect(plugin.embeddingDim(p)).toBe(16);
    const graph = plugin.build({ backend: cpu, params: p, rng: createRng(0) });
    const data = random(2 * 3 * 32 * 32, 21);
    const want = await runModule(native, cpu, data, [2, 3, 32, 32]);
    expect(maxDiff(await runModule(graph, cpu, data, [2, 3, 32, 32]), want)).toBeLessThan(1e-4);
    // Training mode and the backward pass: the same loss, the same gradient of a convolution.
    const gradOf = async (module: Module, name: string) => {
      const x = tensor(cpu, data, [2, 3, 32, 32]);
      backward(sum(module.forward(x, { training: true, seed: 1 })));
      const t = module.parameters.find((q) => q.name === name)!.tensor;
      return (await t.grad!.data()) as Float32Array;
    };
    const gNative = await gradOf(native, 'layer2.0.conv1.weight');
    const gGraph = await gradOf(graph, 'layer2.0.conv1.weight');
    expect(maxDiff(gGraph, gNative)).toBeLessThan(1e-4 * Math.max(1, maxDiff(gNative, new Float32Array(gNative.length))));
  });
});

describe('bad ONNX files are clear errors naming the file', () => {
  test('an unsupported op names the op and the node', () => {
    const bytes = model({
      graphName: 'g', nodes: [node({ opType: 'Softmax', inputs: ['input'], outputs: ['embedding'], name: '/head/Softmax' })], initializers: [],
      inputs: [valueInfo('input', ['N', 3, 8, 8])], outputs: [valueInfo('embedding', ['N', 5])], opset: 13, irVersion: 7, producerName: 't', producerVersion: '0',
    });
    expect(() => buildOnnxModule(decodeOnnx(bytes, 'soft.onnx'), 'soft.onnx', cpu, createRng(0)))
      .toThrow(/^soft\.onnx: node \/head\/Softmax uses op Softmax, which the onnx backbone does not run/);
  });

  test('a truncated file, an opset out of range, a file that is no model', () => {
    const bytes = foldedGraph(11);
    for (const cut of [bytes.length - 3, bytes.length >> 1, 40]) {
      expect(() => decodeOnnx(bytes.subarray(0, cut), 'cut.onnx')).toThrow(FormatError);
      expect(() => decodeOnnx(bytes.subarray(0, cut), 'cut.onnx')).toThrow(/^cut\.onnx: not (a readable ONNX model|an ONNX model)/);
    }
    const old = model({ graphName: 'g', nodes: [], initializers: [], inputs: [], outputs: [], opset: 7, irVersion: 3, producerName: 't', producerVersion: '0' });
    expect(() => buildOnnxModule(decodeOnnx(old, 'old.onnx'), 'old.onnx', cpu, createRng(0))).toThrow(/^old\.onnx: opset 7 is not supported \(opsets 9 to 17\)/);
    expect(() => decodeOnnx(new TextEncoder().encode('{"not": "onnx"}'), 'j.onnx')).toThrow(/^j\.onnx: not/);
  });
});
