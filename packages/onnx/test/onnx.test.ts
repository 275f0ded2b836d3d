import { describe, expect, test } from 'vitest';
import ort from 'onnxruntime-node';
import { createRng, noGrad, sumAxis, tensor, type Backbone, type Module } from '@fr/core';
import { createCpuBackend } from '@fr/backend-cpu';
import { smallnet } from '@fr/smallnet';
import { mobilefacenet } from '@fr/mobilefacenet';
import { iresnet } from '@fr/iresnet';
import { exportBackboneOnnx, exportOnnx } from '../src/index.js';
import { ProtoWriter } from '../src/protobuf.js';

const backend = createCpuBackend();

function randomData(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform() * 2 - 1);
}

/** Builds a backbone, moves its BN running statistics off their initial values, returns it. */
function prepared<P>(b: Backbone<P>, raw: unknown, seed: number): { module: Module; params: P } {
  const params = b.params.parse(raw);
  const module = b.build({ backend, params, rng: createRng(seed) });
  const [c, h, w] = b.inputShape(params);
  noGrad(() => module.forward(tensor(backend, randomData(2 * c * h * w, seed + 1), [2, c, h, w]), { training: true, seed: 1 }));
  return { module, params };
}

async function compareWithOnnxRuntime<P>(b: Backbone<P>, raw: unknown, batch: number, tol: number) {
  const { module, params } = prepared(b, raw, 11);
  const bytes = await exportBackboneOnnx(b, params, module);
  const [c, h, w] = b.inputShape(params);
  const data = randomData(batch * c * h * w, 12);
  const want = await noGrad(() => module.forward(tensor(backend, data, [batch, c, h, w]), { training: false })).data();
  const session = await ort.InferenceSession.create(bytes);
  expect(session.inputNames).toEqual(['input']);
  expect(session.outputNames).toEqual(['embedding']);
  const out = await session.run({ input: new ort.Tensor('float32', data, [batch, c, h, w]) });
  const got = out.embedding;
  expect(got.dims).toEqual([batch, b.embeddingDim(params)]);
  const g = got.data as Float32Array;
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(g[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  expect(scale).toBeGreaterThan(1e-3);
  console.log(`${b.name}: max |onnxruntime - cpu| = ${err.toExponential(2)} (max |embedding| ${scale.toExponential(2)})`);
  expect(err).toBeLessThanOrEqual(tol * scale);
  module.dispose();
  return { bytes, err, scale };
}

describe('onnxruntime-node runs the exported graphs and agrees with the CPU backend', () => {
  test('smallnet (batch 3: the batch dimension is dynamic)', async () => {
    const { bytes } = await compareWithOnnxRuntime(smallnet, { dropout: 0.2 }, 3, 1e-4);
    expect(bytes.length).toBeGreaterThan(4 * 70_000);
  });

  test('mobilefacenet mbf at 112x112 (batch 2)', async () => {
    await compareWithOnnxRuntime(mobilefacenet, {}, 2, 1e-4);
  });

  test('a small iresnet (residual adds, downsample, frozen feature scale)', async () => {
    await compareWithOnnxRuntime(iresnet, { depth: 18, inputSize: 32, width: 0.25, embeddingDim: 64, dropout: 0.5 }, 2, 1e-4);
  });

  test('initializers carry the module tensor names', async () => {
    const { module, params } = prepared(smallnet, {}, 3);
    const bytes = await exportOnnx(module, { inputShape: smallnet.inputShape(params), inputName: 'images', outputName: 'features' });
    const text = new TextDecoder('latin1').decode(bytes);
    for (const n of ['stage1.conv.weight', 'stage4.bn.running_var', 'fc.bias', 'features.weight']) expect(text).toContain(n);
    const session = await ort.InferenceSession.create(bytes);
    expect(session.inputNames).toEqual(['images']);
    expect(session.outputNames).toEqual(['features']);
    module.dispose();
  });
});

describe('refusals', () => {
  test('a forward that runs batch norm in training mode, or an unmapped kernel, is refused by name', async () => {
    const { module, params } = prepared(smallnet, {}, 4);
    const training: Module = { ...module, forward: (x) => module.forward(x, { training: true }) };
    await expect(exportOnnx(training, { inputShape: smallnet.inputShape(params) })).rejects.toThrow(/batch norm ran in training mode/);
    const summing: Module = { ...module, forward: (x) => sumAxis(module.forward(x, { training: false }), 1) };
    await expect(exportOnnx(summing, { inputShape: smallnet.inputShape(params) })).rejects.toThrow(/kernel reduceSum .* has no ONNX mapping/);
    // The backend's kernels are restored after a failed trace.
    const y = noGrad(() => module.forward(tensor(backend, randomData(3 * 32 * 32, 1), [1, 3, 32, 32]), { training: false }));
    expect(y.shape).toEqual([1, 128]);
    module.dispose();
  });
});

describe('protobuf writer', () => {
  test('varints, strings, floats and nested messages encode as protobuf does', () => {
    expect(Array.from(new ProtoWriter().int(1, 150).finish())).toEqual([0x08, 0x96, 0x01]);
    expect(Array.from(new ProtoWriter().string(2, 'testing').finish())).toEqual([0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]);
    expect(Array.from(new ProtoWriter().int(1, -1).finish())).toEqual([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(Array.from(new ProtoWriter().float(2, 1).finish())).toEqual([0x15, 0x00, 0x00, 0x80, 0x3f]);
    expect(Array.from(new ProtoWriter().message(3, new ProtoWriter().int(1, 150)).finish())).toEqual([0x1a, 0x03, 0x08, 0x96, 0x01]);
    expect(Array.from(new ProtoWriter().int(1, 2 ** 40).finish())).toEqual([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
  });
});
