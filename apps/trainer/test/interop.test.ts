/**
 * fr import / embed / export against insightface's MobileFaceNet as PyTorch ran it
 * (fixtures/interop/mbf: model.pth, model.onnx, four images, the expected embeddings).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { createNodeWebGpuBackend } from '@fr/backend-webgpu/node';
import { createRng, decodeSafetensors, type Backend } from '@fr/core';
import { readTorchStateDict, writeTorchFile, type TorchFileTensor } from '@fr/data';
import { iresnet } from '@fr/iresnet';
import { defaultPlugins, embedFolder, exportSafetensorsCommand, importCommand, loadConfig, loadRun, train } from '../src/index.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/interop/mbf/${name}`, import.meta.url));
const expected = JSON.parse(await readFile(fixture('expected.json'), 'utf8')) as {
  images: Record<string, { embedding: number[]; mirrored: number[] }>;
  tolerance: { cosine: number; maxAbsNormalized: number };
};
const cpu = createCpuBackend();
const gpu = await createNodeWebGpuBackend();
afterAll(() => gpu.dispose());
const plugins = defaultPlugins;
const tmp = () => mkdtemp(join(tmpdir(), 'fr-interop-'));

async function mbfConfig(extra = ''): Promise<string> {
  const path = join(await tmp(), 'mbf.yaml');
  await writeFile(path, `backend: cpu
data:
  train: { name: synthetic, size: 112, identities: 4, imagesPerIdentity: 2 }
backbone: { name: mobilefacenet, inputSize: 112${extra} }
loss: { name: arcface }
batchSize: 4
steps: 1
`);
  return path;
}

/** `fr embed` of the fixture's images against PyTorch's flip-fused, L2-normalised embeddings. */
async function compareEmbeddings(run: string, backend: Backend): Promise<{ maxAbs: number; minCosine: number }> {
  const out = join(await tmp(), 'embeddings.jsonl');
  expect(await embedFolder(run, fixture('images'), out, plugins, backend)).toBe(4);
  let maxAbs = 0, minCosine = 1;
  for (const line of (await readFile(out, 'utf8')).trim().split('\n')) {
    const { file, embedding } = JSON.parse(line) as { file: string; embedding: number[] };
    const e = expected.images[file];
    const fused = e.embedding.map((v, i) => v + e.mirrored[i]);
    const norm = Math.hypot(...fused);
    let dot = 0;
    fused.forEach((v, i) => { maxAbs = Math.max(maxAbs, Math.abs(v / norm - embedding[i])); dot += (v / norm) * embedding[i]; });
    minCosine = Math.min(minCosine, dot);
  }
  expect(maxAbs).toBeLessThanOrEqual(expected.tolerance.maxAbsNormalized);
  expect(minCosine).toBeGreaterThanOrEqual(1 - expected.tolerance.cosine);
  return { maxAbs, minCosine };
}

const pthRun = (async () => {
  const out = await tmp();
  const r = await importCommand({ file: fixture('model.pth'), configPath: await mbfConfig(), out, plugins, backend: cpu });
  expect(r.tensors).toBe(283);
  return out;
})();
const onnxRun = (async () => {
  const out = await tmp();
  const r = await importCommand({ file: fixture('model.onnx'), out, plugins, backend: cpu });
  expect(r.config.backbone).toMatchObject({ name: 'onnx' });
  return out;
})();

describe('fr import of insightface MobileFaceNet, fr embed as PyTorch', () => {
  for (const [name, backend] of [['cpu', cpu], ['webgpu', gpu]] as const) {
    test(`.pth (state_dict into mobilefacenet), ${name}`, async () => {
      const r = await compareEmbeddings(await pthRun, backend);
      console.log(`.pth ${name}: max abs ${r.maxAbs.toExponential(2)}, min cosine ${r.minCosine}`);
    }, 300_000);
    test(`.onnx (the onnx backbone), ${name}`, async () => {
      const r = await compareEmbeddings(await onnxRun, backend);
      console.log(`.onnx ${name}: max abs ${r.maxAbs.toExponential(2)}, min cosine ${r.minCosine}`);
    }, 300_000);
  }
});

describe('fr export --safetensors', () => {
  test('an imported .pth round-trips to the same tensors, num_batches_tracked included', async () => {
    const bytes = await exportSafetensorsCommand(await pthRun, plugins, cpu);
    const source = readTorchStateDict(await readFile(fixture('model.pth')), 'model.pth');
    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    delete header.__metadata__;
    expect(Object.keys(header).sort()).toEqual([...source.keys()].sort());
    const body = bytes.subarray(8 + headerLength);
    for (const [name, t] of source) {
      const h = header[name];
      expect(h.shape, name).toEqual(t.shape);
      const raw = body.slice(h.data_offsets[0], h.data_offsets[1]);
      if (t.dtype === 'int64') {
        expect(h.dtype).toBe('I64');
        expect(Array.from(new BigInt64Array(raw.buffer)), name).toEqual(Array.from(t.data as BigInt64Array));
      } else {
        expect(h.dtype).toBe('F32');
        expect(firstDifference(new Float32Array(raw.buffer), t.data as Float32Array), name).toBe(-1);
      }
    }
  }, 300_000);
});

describe('fine-tuning from backbone.pretrained', () => {
  test('a run starts from the .pth weights', async () => {
    const config = await loadConfig(await mbfConfig(`, pretrained: ${JSON.stringify(fixture('model.pth'))}`), plugins, { output: await tmp(), optimizer: { name: 'sgd', lr: 1e-3 } });
    expect(config.backbone.pretrained).toBe(fixture('model.pth'));
    const result = await train(config, { plugins, backend: cpu, backendReason: 'cpu', print: () => {} });
    expect(result.steps).toBe(1);
    const run = await loadRun(config.output, plugins, cpu);
    const source = readTorchStateDict(await readFile(fixture('model.pth')), 'model.pth');
    // One small step away from the pretrained weights, far from a fresh initialisation.
    const name = 'layers.0.layers.0.weight';
    const trained = (await run.module.parameters.find((p) => p.name === name)!.tensor.data()) as Float32Array;
    const pretrained = source.get(name)!.data as Float32Array;
    let moved = 0, size = 0;
    trained.forEach((v, i) => { moved = Math.max(moved, Math.abs(v - pretrained[i])); size = Math.max(size, Math.abs(pretrained[i])); });
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(0.01 * size);
  }, 120_000);
});

describe('fine-tuning an imported run folder', () => {
  test('fr train --resume continues an imported ONNX model from step 0', async () => {
    const out = await tmp();
    await importCommand({ file: fixture('model.onnx'), configPath: await mbfConfig(), out, plugins, backend: cpu });
    const before = await loadRun(out, plugins, cpu);
    expect(before.meta.step).toBe('0');
    const name = before.module.parameters[0].name;
    const initial = (await before.module.parameters[0].tensor.data()) as Float32Array;
    const result = await train(before.config, { plugins, backend: cpu, backendReason: 'cpu', resume: true, print: () => {} });
    expect(result.steps).toBe(1);
    const after = await loadRun(out, plugins, cpu);
    expect(after.meta.step).toBe('1');
    const trained = (await after.module.parameters.find((p) => p.name === name)!.tensor.data()) as Float32Array;
    expect(firstDifference(trained, initial)).toBeGreaterThanOrEqual(0);
  }, 300_000);
});

describe('iResNet state_dicts and bad files', () => {
  test('an iResNet-18 .pth with a module. prefix imports one to one', async () => {
    const params = iresnet.params.parse({ depth: 18, inputSize: 32, embeddingDim: 16 });
    const source = iresnet.build({ backend: cpu, params, rng: createRng(9) });
    const tensors: TorchFileTensor[] = [];
    for (const { name, tensor } of [...source.parameters, ...source.buffers]) {
      tensors.push({ name: `module.${name}`, dtype: 'float32', storage: (await tensor.data()) as Float32Array, shape: [...tensor.shape] });
      if (name.endsWith('.running_mean')) tensors.push({ name: `module.${name.replace('running_mean', 'num_batches_tracked')}`, dtype: 'int64', storage: BigInt64Array.of(42n), shape: [] });
    }
    const dir = await tmp();
    await writeFile(join(dir, 'r18.pth'), writeTorchFile(tensors));
    const configPath = join(dir, 'r18.yaml');
    await writeFile(configPath, 'data: { train: { name: synthetic, size: 32 } }\nbackbone: { name: iresnet, depth: 18, inputSize: 32, embeddingDim: 16 }\nloss: { name: cosface }\nsteps: 1\n');
    const r = await importCommand({ file: join(dir, 'r18.pth'), configPath, out: join(dir, 'run'), plugins, backend: cpu });
    expect(r.tensors).toBe(156);
    const run = await loadRun(join(dir, 'run'), plugins, cpu);
    for (const [i, { name, tensor }] of source.parameters.entries()) {
      expect(firstDifference((await run.module.parameters[i].tensor.data()) as Float32Array, (await tensor.data()) as Float32Array), name).toBe(-1);
    }
    const exported = decodeSafetensors(await exportSafetensorsCommand(join(dir, 'run'), plugins, cpu).then((b) => stripInt64(b)), 'r18');
    expect(Object.keys(exported.tensors)).toHaveLength(156);
  }, 300_000);

  test('wrong names, truncated models and a missing config are errors naming the file', async () => {
    const dir = await tmp();
    const r18 = join(dir, 'r18.yaml');
    await writeFile(r18, 'data: { train: { name: synthetic, size: 32 } }\nbackbone: { name: iresnet, depth: 18, inputSize: 32 }\nloss: { name: arcface }\nsteps: 1\n');
    await expect(importCommand({ file: fixture('model.pth'), configPath: r18, out: join(dir, 'a'), plugins, backend: cpu }))
      .rejects.toThrow(/model\.pth: the state_dict does not match backbone iresnet \(156 tensors\): 156 missing \(conv1\.weight, .*283 unexpected \(layers\.0\.layers\.0\.weight/);
    const pth = await readFile(fixture('model.pth'));
    await writeFile(join(dir, 'cut.pth'), pth.subarray(0, pth.length - 100));
    await expect(importCommand({ file: join(dir, 'cut.pth'), configPath: await mbfConfig(), out: join(dir, 'b'), plugins, backend: cpu }))
      .rejects.toThrow(/cut\.pth: not a readable zip archive/);
    const onnx = await readFile(fixture('model.onnx'));
    await writeFile(join(dir, 'cut.onnx'), onnx.subarray(0, onnx.length - 1000));
    await expect(importCommand({ file: join(dir, 'cut.onnx'), out: join(dir, 'c'), plugins, backend: cpu })).rejects.toThrow(/backbone\.onnx: not a readable ONNX model/);
    await expect(importCommand({ file: fixture('model.pth'), out: join(dir, 'd'), plugins, backend: cpu })).rejects.toThrow(/model\.pth: a PyTorch state_dict holds weights only; give --config/);
  });
});

/** The first index where two arrays differ (-1: none); toEqual is slow on millions of values. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

/** The exported file without its int64 counters, for @fr's own safetensors reader (float tensors only). */
function stripInt64(bytes: Uint8Array): Uint8Array {
  // The entries without the int64 counters, their data packed again (the reader wants no gaps).
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const kept = Object.entries(header).filter(([k, e]) => k === '__metadata__' || e.dtype !== 'I64');
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [k, e] of kept) {
    if (k === '__metadata__') continue;
    const [begin, end] = e.data_offsets;
    parts.push(bytes.subarray(8 + n + begin, 8 + n + end));
    e.data_offsets = [offset, offset + end - begin];
    offset += end - begin;
  }
  const json = new TextEncoder().encode(JSON.stringify(Object.fromEntries(kept)));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
