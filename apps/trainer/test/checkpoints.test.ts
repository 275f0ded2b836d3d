/** Checkpoints: the safetensors reader, --resume, shipped models, output folders, failed writes. */
import { appendFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { createCpuBackend } from '@fr/backend-cpu';
import { decodeSafetensors, encodeSafetensors, FormatError, type SafetensorsEntry } from '@fr/core';
import { writeFileAtomic } from '@fr/core/node';
import { CHECKPOINT_FILE, evalCommand, train } from '../src/index.js';
import { appendLog } from '../src/run-guard.js';
import { cpuOptions, plugins, tinyConfig, tmp } from './helpers.js';

/** A file with `header` as its JSON header (padded as the reference writer does) and `data` after it. */
function rawFile(header: unknown, data = new Uint8Array(0)): Uint8Array {
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const decodeError = (bytes: Uint8Array) => {
  try {
    decodeSafetensors(bytes, 'bad.safetensors');
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return (e as Error).message;
  }
  throw new Error('decoded without an error');
};

describe('the safetensors reader validates as the Python library', () => {
  const f32 = (n: number) => ({ dtype: 'F32', shape: [n] });
  test('header length, JSON object, metadata of strings', () => {
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expect(decodeError(huge)).toMatch(/bad\.safetensors: header length 1099511627776 runs past the end of the file \(16 bytes\)/);
    expect(decodeError(rawFile([1, 2]))).toMatch(/bad\.safetensors: header is an array, not a JSON object/);
    expect(decodeError(rawFile({ __metadata__: { step: 3 } }))).toMatch(/__metadata__\.step is a number; metadata values are strings/);
    const notJson = rawFile({});
    notJson[8] = 0x7b; notJson[9] = 0x7b;
    expect(decodeError(notJson)).toMatch(/header is not valid UTF-8 JSON/);
  });
  test('every entry has a known dtype, a shape and data_offsets', () => {
    const data = new Uint8Array(8);
    expect(decodeError(rawFile({ w: { shape: [2], data_offsets: [0, 8] } }, data))).toMatch(/tensor w has no dtype/);
    expect(decodeError(rawFile({ w: { dtype: 'F33', shape: [2], data_offsets: [0, 8] } }, data))).toMatch(/tensor w has dtype "F33", which is not a safetensors dtype/);
    expect(decodeError(rawFile({ w: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, data))).toMatch(/tensor w has dtype F64; @fr reads F32, F16 and I32: convert it/);
    expect(decodeError(rawFile({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data))).toMatch(/tensor w has shape \[-2\]; a shape is a list of non-negative integers/);
    expect(decodeError(rawFile({ w: { dtype: 'F32', shape: [2] } }, data))).toMatch(/tensor w has data_offsets undefined/);
    expect(decodeError(rawFile({ w: { ...f32(2), data_offsets: [0, 8], extra: 1 } }, data))).toMatch(/tensor w has unknown field extra/);
  });
  test('offsets in bounds, contiguous, non-overlapping, sized as shape x dtype', () => {
    const data = new Uint8Array(16);
    expect(decodeError(rawFile({ w: { ...f32(2), data_offsets: [-8, 0] } }, data))).toMatch(/tensor w has data_offsets \[-8,0\]/);
    expect(decodeError(rawFile({ w: { ...f32(2), data_offsets: [8, 0] } }, data))).toMatch(/tensor w has data_offsets \[8, 0\]: end before begin/);
    expect(decodeError(rawFile({ w: { ...f32(3), data_offsets: [0, 8] } }, data))).toMatch(/tensor w spans 8 bytes, shape \[3\] of F32 needs 12/);
    expect(decodeError(rawFile({ a: { ...f32(2), data_offsets: [0, 8] }, b: { ...f32(2), data_offsets: [4, 12] } }, data)))
      .toMatch(/tensor b starts at data byte 4, which overlaps the tensor before it/);
    expect(decodeError(rawFile({ a: { ...f32(2), data_offsets: [0, 8] }, b: { ...f32(1), data_offsets: [12, 16] } }, data)))
      .toMatch(/tensor b starts at data byte 12, which leaves a gap of 4 bytes before it/);
    expect(decodeError(rawFile({ a: { ...f32(2), data_offsets: [0, 8] } }, data))).toMatch(/the tensors cover 8 bytes of data, the file holds 16 after the header/);
    expect(decodeError(rawFile({ a: { ...f32(6), data_offsets: [0, 24] } }, data))).toMatch(/tensor a ends at byte \d+, past the end of the file/);
  });
});

async function trainedRun(steps = 3) {
  const dir = await tmp();
  await train(tinyConfig(dir, { steps }), cpuOptions());
  return dir;
}

/** Rewrites a checkpoint with `edit` applied to its tensors and metadata. */
async function rewrite(path: string, edit: (t: Record<string, SafetensorsEntry>, m: Record<string, string>) => void): Promise<void> {
  const { tensors, metadata } = decodeSafetensors(await readFile(path), path);
  edit(tensors, metadata);
  await writeFile(path, encodeSafetensors(tensors, metadata));
}

describe('checkpoints a model reads', () => {
  test('an I32 tensor where the model has float weights is refused, naming the tensor', async () => {
    const dir = await trainedRun(1);
    const path = join(dir, CHECKPOINT_FILE);
    await rewrite(path, (t) => {
      const w = t['head.arcface.weight'];
      t['head.arcface.weight'] = { dtype: 'I32', shape: w.shape, data: new Int32Array(w.data.length) };
    });
    await expect(evalCommand(dir, null, plugins, createCpuBackend())).rejects.toThrow(/checkpoint\.safetensors: tensor head\.arcface\.weight is I32 \(integers\), this model needs floating point/);
  });

  test('fr eval reads a shipped model without optimizer state, and F16 weights are widened', async () => {
    const dir = await trainedRun(2);
    const [before] = await evalCommand(dir, null, plugins, createCpuBackend());
    await rewrite(join(dir, CHECKPOINT_FILE), (t, m) => {
      for (const name of Object.keys(t)) if (!name.startsWith('backbone.') && !name.startsWith('head.')) delete t[name];
      delete m.step;
      delete m.optimizerSteps;
    });
    const [after] = await evalCommand(dir, null, plugins, createCpuBackend());
    expect(after.accuracyMean).toBe(before.accuracyMean);
    // --resume needs the training state the shipped model lacks.
    await expect(train(tinyConfig(dir), cpuOptions({ resume: true }))).rejects.toThrow(/--resume: .*checkpoint\.safetensors has no step, optimizerSteps in its metadata: it holds a model, not a training state/);
  });

  test('--resume refuses a non-integer step in the metadata (a checkpoint written elsewhere)', async () => {
    const dir = await trainedRun(2);
    await rewrite(join(dir, CHECKPOINT_FILE), (_t, m) => { m.step = 'NaN'; });
    await expect(train(tinyConfig(dir), cpuOptions({ resume: true }))).rejects.toThrow(/metadata step "NaN" is not a non-negative integer/);
  });
});

describe('--resume', () => {
  test('refuses a changed config, listing the differences, unless --allow-config-change', async () => {
    const dir = await tmp();
    await train(tinyConfig(dir), cpuOptions({ stopAfter: 2 }));
    const changed = tinyConfig(dir, { seed: 4, batchSize: 4, optimizer: { name: 'sgd', lr: 0.05 }, loss: { name: 'arcface', s: 16, m: 0.3 } });
    const e = await train(changed, cpuOptions({ resume: true })).catch((err: Error) => err);
    expect((e as Error).message).toMatch(/--resume: the config differs from the one .*checkpoint\.safetensors was trained with:/);
    for (const line of ['seed: 3 -> 4', 'batchSize: 8 -> 4', 'optimizer.lr: 0.1 -> 0.05', 'loss.m: 0.2 -> 0.3']) expect((e as Error).message).toContain(`  - ${line}`);
    const lines: string[] = [];
    const r = await train(tinyConfig(dir, { optimizer: { name: 'sgd', lr: 0.05 } }), cpuOptions({ resume: true, allowConfigChange: true, print: (l) => lines.push(l) }));
    expect(r.steps).toBe(6);
    expect(lines.join('\n')).toMatch(/--allow-config-change: resuming with 1 change\(s\): optimizer\.lr: 0\.1 -> 0\.05/);
  });

  test('a resumed log has no step twice (lines written after the last checkpoint are dropped)', async () => {
    const dir = await tmp();
    await train(tinyConfig(dir), cpuOptions({ stopAfter: 3 }));
    // What a crash after step 5 leaves: log lines past the checkpoint of step 3.
    await appendFile(join(dir, 'log.jsonl'), '{"step":4,"loss":1}\n{"step":5,"loss":1}\n');
    await train(tinyConfig(dir), cpuOptions({ resume: true }));
    const log = (await readFile(join(dir, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number });
    const trained = log.filter((l) => l.loss !== undefined).map((l) => l.step);
    expect(trained).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('output folders', () => {
  test('a fresh run into a folder that holds one is refused, naming it; --overwrite replaces it', async () => {
    const dir = await trainedRun(2);
    const oldCheckpoint = await readFile(join(dir, CHECKPOINT_FILE));
    const oldLog = await readFile(join(dir, 'log.jsonl'), 'utf8');
    await expect(train(tinyConfig(dir), cpuOptions())).rejects.toThrow(
      new RegExp(`output folder ${dir} holds a run \\(checkpoint\\.safetensors, log\\.jsonl\\): continue it with --resume, replace it with --overwrite`),
    );
    expect(await readFile(join(dir, 'log.jsonl'), 'utf8')).toBe(oldLog);
    // An overwrite that fails before its first checkpoint leaves the old run as it was.
    const badEval = tinyConfig(dir, { data: { ...tinyConfig(dir).data, eval: [{ name: 'synthetic', testIdentities: 20, imagesPerIdentity: 4, pairsPerFold: 1, size: 32 }] } });
    await expect(train(badEval, cpuOptions({ overwrite: true }))).rejects.toThrow(/verification set synthetic: images are 32x32, the backbone takes 16x16/);
    expect(await readFile(join(dir, 'log.jsonl'), 'utf8')).toBe(oldLog);
    expect(Buffer.compare(await readFile(join(dir, CHECKPOINT_FILE)), oldCheckpoint)).toBe(0);
    const r = await train(tinyConfig(dir, { steps: 4 }), cpuOptions({ overwrite: true }));
    expect(r.steps).toBe(4);
    const log = (await readFile(join(dir, 'log.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number });
    expect(log.filter((l) => l.loss !== undefined).map((l) => l.step)).toEqual([1, 2, 3, 4]);
    expect((await readdir(dir)).sort()).toEqual([CHECKPOINT_FILE, 'log.jsonl', 'report.html']);
  });
});

describe('temporary files', () => {
  test('those a killed write left are removed when the run continues', async () => {
    const dir = await tmp();
    await train(tinyConfig(dir), cpuOptions({ stopAfter: 2 }));
    await writeFile(join(dir, `${CHECKPOINT_FILE}.tmp-123-456`), 'half a checkpoint');
    await writeFile(join(dir, 'log.jsonl.new'), '{"step":1,"loss":1}\n');
    const lines: string[] = [];
    await train(tinyConfig(dir), cpuOptions({ resume: true, print: (l) => lines.push(l) }));
    expect(lines).toContain(`removed ${join(dir, `${CHECKPOINT_FILE}.tmp-123-456`)}, left by an interrupted write`);
    expect(lines).toContain(`removed ${join(dir, 'log.jsonl.new')}, left by an interrupted write`);
    expect((await readdir(dir)).sort()).toEqual([CHECKPOINT_FILE, 'log.jsonl', 'report.html']);
  });
});

describe('failed writes', () => {
  test('name the path and the cause, remove the temporary file and keep the previous file', async () => {
    const dir = await tmp();
    const target = join(dir, 'checkpoint.safetensors');
    await mkdir(target); // a folder where the file should go: the rename fails
    await expect(writeFileAtomic(target, new Uint8Array(8))).rejects.toThrow(new RegExp(`cannot write ${target}: (EISDIR|EEXIST|ENOTEMPTY|EPERM) .*the previous file, if any, is unchanged`));
    expect(await readdir(dir)).toEqual(['checkpoint.safetensors']);
    const file = join(dir, 'plain');
    await writeFile(file, 'x');
    await expect(writeFileAtomic(join(file, 'below'), 'y')).rejects.toThrow(new RegExp(`cannot write ${file}/below: (ENOTDIR|EEXIST)`));
    expect(await readFile(file, 'utf8')).toBe('x');
    await expect(appendLog(join(file, 'log.jsonl'), '{}\n')).rejects.toThrow(new RegExp(`cannot write the log ${file}/log\\.jsonl: ENOTDIR`));
  });
});

describe('a run is never lost', () => {
  test('an error after training started saves the last completed step and says where', async () => {
    const dir = await tmp();
    const e = await train(tinyConfig(dir), cpuOptions({
      onStep: (s) => { if (s.step === 3) throw new Error('label 99 is outside [0, 12)'); },
    })).catch((err: Error) => err);
    expect((e as Error).message).toMatch(new RegExp(`label 99 is outside \\[0, 12\\)\\nthe checkpoint of step 3 is saved in ${dir}/checkpoint\\.safetensors; continue with --resume`));
    const meta = decodeSafetensors(await readFile(join(dir, CHECKPOINT_FILE))).metadata;
    expect(meta.step).toBe('3');
    const resumed = await train(tinyConfig(dir), cpuOptions({ resume: true }));
    expect(resumed.steps).toBe(6);
  });
});

describe('numbers that never train stop the run', () => {
  test('a static loss scale that overflows on every step', async () => {
    const long = tinyConfig(await tmp(), { lossScale: 1e38, steps: 12, data: { ...tinyConfig('').data, eval: [] } });
    await expect(train(long, cpuOptions())).rejects.toThrow(/10 steps in a row were skipped \(the last: gradients overflow at loss scale 1e\+38\); stopped: lower lossScale \(now 1e\+38\)/);
    const short = tinyConfig(await tmp(), { lossScale: 1e38, steps: 4, data: { ...tinyConfig('').data, eval: [] } });
    await expect(train(short, cpuOptions())).rejects.toThrow(/all 4 steps of this run were skipped .*nothing was trained/);
  });
});
