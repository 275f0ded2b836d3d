import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { createCpuBackend } from '@fr/backend-cpu';
import { createRng, DataError, float32ToFloat16Bits, FormatError, layerBuilder, sequential, type Module } from '@fr/core';
import { describe, expect, it, test } from 'vitest';
import {
  loadStateDict, PickleWriter, readTorchStateDict, readZip, statePickle, torchStateDictSafetensors, writeTorchFile, writeZip,
  type TorchFileTensor,
} from '../src/index.js';

const weight: TorchFileTensor = { name: 'conv.weight', dtype: 'float32', storage: [1, 2, 3, 4, 5, 6], shape: [2, 3] };

describe('PyTorch state_dicts (torch.save zip format)', () => {
  it('reads float32, float16 and int64 storages, parameters and the module. prefix', () => {
    const half = [0.5, -2, 1024].map(float32ToFloat16Bits);
    const file = writeTorchFile([
      { ...weight, name: 'module.conv.weight', parameter: true },
      { name: 'module.bn.running_var', dtype: 'float16', storage: Uint16Array.from(half), shape: [3] },
      { name: 'module.bn.num_batches_tracked', dtype: 'int64', storage: BigInt64Array.of(12345678901n), shape: [] },
    ]);
    const sd = readTorchStateDict(file, 'a.pth');
    expect([...sd.keys()]).toEqual(['conv.weight', 'bn.running_var', 'bn.num_batches_tracked']);
    expect(sd.get('conv.weight')).toEqual({ dtype: 'float32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) });
    expect(sd.get('bn.running_var')).toEqual({ dtype: 'float16', shape: [3], data: Float32Array.of(0.5, -2, 1024) });
    expect(sd.get('bn.num_batches_tracked')).toEqual({ dtype: 'int64', shape: [], data: BigInt64Array.of(12345678901n) });
  });

  it('reads views: offsets, strides (a transpose) and storages shared by two tensors', () => {
    const storage = Float32Array.from({ length: 12 }, (_, i) => i);
    const sd = readTorchStateDict(writeTorchFile([
      { name: 't', dtype: 'float32', storage, shape: [3, 2], stride: [1, 3], key: 's' }, // rows of [[0,1,2],[3,4,5]]^T
      { name: 'tail', dtype: 'float32', storage, shape: [2, 2], stride: [2, 1], offset: 8, key: 's' },
    ], { root: 'model' }), 'views.pth');
    expect(Array.from(sd.get('t')!.data as Float32Array)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(Array.from(sd.get('tail')!.data as Float32Array)).toEqual([8, 9, 10, 11]);
  });

  it('reads big-endian storages when the byteorder entry says so', () => {
    const sd = readTorchStateDict(writeTorchFile([weight, { name: 'n', dtype: 'int64', storage: BigInt64Array.of(-3n), shape: [] }], { bigEndian: true }), 'be.pth');
    expect(Array.from(sd.get('conv.weight')!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(sd.get('n')!.data).toEqual(BigInt64Array.of(-3n));
  });

  it('reads deflated entries only with an inflate function', () => {
    const file = writeTorchFile([weight], { deflate: (d) => new Uint8Array(deflateRawSync(d)) });
    expect(() => readTorchStateDict(file, 'z.pth')).toThrow(/z\.pth: .*deflated, and no inflate function/);
    expect(readTorchStateDict(file, 'z.pth', { inflate: (d) => inflateRawSync(d) }).get('conv.weight')!.shape).toEqual([2, 3]);
  });

  it('refuses a pickle naming any other global, naming the file and the global', () => {
    const evil = new PickleWriter().op(0x80, 2).global('os', 'system').str('echo hi').op(0x85, 0x52, 0x2e).bytes();
    expect(() => readTorchStateDict(writeTorchFile([weight], { pickle: evil }), 'evil.pth')).toThrow(FormatError);
    expect(() => readTorchStateDict(writeTorchFile([weight], { pickle: evil }), 'evil.pth')).toThrow(/^evil\.pth: refusing to load global os\.system/);
    const builtins = new PickleWriter().op(0x80, 2).global('builtins', 'eval').op(0x2e).bytes();
    expect(() => readTorchStateDict(writeTorchFile([weight], { pickle: builtins }), 'b.pth')).toThrow(/refusing to load global builtins\.eval/);
    // An allowed global used in a way a state_dict never does is refused too.
    const odd = new PickleWriter().op(0x80, 2).global('torch', 'FloatStorage').op(0x29, 0x52, 0x2e).bytes();
    expect(() => readTorchStateDict(writeTorchFile([weight], { pickle: odd }), 'odd.pth')).toThrow(/odd\.pth: REDUCE of torch\.FloatStorage/);
  });

  it('refuses a truncated or damaged archive, naming the file', () => {
    const file = writeTorchFile([weight]);
    for (const cut of [10, file.length >> 1, file.length - 5]) {
      expect(() => readTorchStateDict(file.subarray(0, cut), 'cut.pth')).toThrow(/^cut\.pth: not a readable zip archive/);
    }
    const damaged = file.slice();
    damaged[60] ^= 0xff; // inside data.pkl (after the 30-byte local header and its 16-byte name)
    expect(() => readTorchStateDict(damaged, 'bad.pth')).toThrow(/bad\.pth: .*CRC-32/);
    const pickle = statePickle([weight]);
    expect(() => readTorchStateDict(writeTorchFile([weight], { pickle: pickle.subarray(0, pickle.length - 1) }), 't.pth')).toThrow(/^t\.pth: truncated before STOP/);
    expect(() => readTorchStateDict(writeZip([{ name: 'archive/data.pkl', data: pickle }]), 'nostorage.pth')).toThrow(/reads storage 0, which the archive lacks/);
    expect(() => readZip(new TextEncoder().encode('not a zip at all, really not'), 'x.pth')).toThrow(/^x\.pth: not a readable zip archive: no end-of-central-directory/);
  });

  it('refuses a view that reads past its storage', () => {
    const file = writeTorchFile([{ ...weight, shape: [2, 3], offset: 2 }]);
    expect(() => readTorchStateDict(file, 'v.pth')).toThrow(/v\.pth: conv\.weight .* reads outside its storage of 6 values/);
  });
});

function tinyNet(): Module {
  const b = layerBuilder(createCpuBackend(), createRng(1));
  const c = b.scope('conv');
  const conv = c.conv2d('0', { inChannels: 2, outChannels: 3, kernel: 1 });
  const bn = c.batchNorm('1', 3);
  const net = sequential(conv, bn);
  return b.module((x, mode) => net.forward(x, mode));
}

describe('state_dicts in and out of modules', () => {
  it('loads matching names and shapes, keeping the num_batches_tracked counters', async () => {
    const net = tinyNet();
    const tensors = [...net.parameters, ...net.buffers];
    const entries: TorchFileTensor[] = await Promise.all(tensors.map(async ({ name, tensor }, i) => ({
      name, dtype: 'float32' as const, shape: [...tensor.shape], storage: Float32Array.from({ length: tensor.size }, (_, k) => i + k / 10),
    })));
    entries.push({ name: 'conv.1.num_batches_tracked', dtype: 'int64', storage: BigInt64Array.of(77n), shape: [] });
    const sd = readTorchStateDict(writeTorchFile(entries), 'net.pth');
    expect(loadStateDict(net, sd, 'net.pth')).toEqual({ 'conv.1.num_batches_tracked': '77' });
    for (const [i, { tensor }] of tensors.entries()) expect(Array.from(await tensor.data())[1]).toBeCloseTo(i + 0.1, 6);

    const raw = await torchStateDictSafetensors(net, { 'conv.1.num_batches_tracked': '77' });
    const headerLength = Number(new DataView(raw.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(raw.subarray(8, 8 + headerLength))) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
    expect(Object.keys(header).sort()).toEqual([...tensors.map((t) => t.name), 'conv.1.num_batches_tracked'].sort());
    const counter = header['conv.1.num_batches_tracked'];
    expect(counter).toMatchObject({ dtype: 'I64', shape: [] });
    expect(new DataView(raw.buffer).getBigInt64(8 + headerLength + counter.data_offsets[0], true)).toBe(77n);
    expect(header['conv.1.running_var']).toMatchObject({ dtype: 'F32', shape: [3] });
  });

  it('names the missing, unexpected and mismatched tensors', () => {
    const net = tinyNet();
    const sd = readTorchStateDict(writeTorchFile([
      { name: 'conv.0.weight', dtype: 'float32', storage: new Float32Array(12), shape: [3, 2, 1, 2] },
      { name: 'head.fc.weight', dtype: 'float32', storage: new Float32Array(1), shape: [1] },
    ]), 'wrong.pth');
    let message = '';
    try { loadStateDict(net, sd, 'wrong.pth', 'backbone tiny'); } catch (e) { expect(e).toBeInstanceOf(DataError); message = (e as Error).message; }
    expect(message).toMatch(/^wrong\.pth: the state_dict does not match backbone tiny \(5 tensors\)/);
    expect(message).toContain('4 missing (conv.1.weight, conv.1.bias, conv.1.running_mean, conv.1.running_var)');
    expect(message).toContain('1 unexpected (head.fc.weight)');
    expect(message).toContain('conv.0.weight is [3, 2, 1, 2] in the file, [3, 2, 1, 1] in backbone tiny');
  });
});

test('reads a file held in a Node Buffer (whose slice is a view, not a copy)', () => {
  const file = Buffer.concat([Buffer.from([1, 2, 3]), writeTorchFile([weight, { ...weight, name: 'b', storage: [7, 8, 9, 10, 11, 12] }])]).subarray(3);
  expect(Array.from(readTorchStateDict(file, 'buf.pth').get('b')!.data as Float32Array)).toEqual([7, 8, 9, 10, 11, 12]);
});
