/** Data under bad input: verification files, RecordIO labels and headers, image folders, image sizes. */
import { deflateSync } from 'node:zlib';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import sharp from 'sharp';
import { decodeSafetensors } from '@fr/core';
import { packRecord, writeRecordIO, writeVerificationBin } from '@fr/data';
import { MAX_IMAGE_PIXELS, openSource, sharpDecoder } from '@fr/data/node';
import { batchIndices, openTrainingSet } from '../src/data.js';
import { createCpuBackend } from '@fr/backend-cpu';
import { CHECKPOINT_FILE, embedFolder, evalCommand, train } from '../src/index.js';
import { cpuOptions, plugins, tinyConfig, tmp } from './helpers.js';

/** A JPEG of `size` x `size`, one colour per `seed`. */
const jpeg = (seed: number, size = 16) =>
  sharp({ create: { width: size, height: size, channels: 3, background: { r: (seed * 37) % 256, g: (seed * 91) % 256, b: (seed * 53) % 256 } } }).jpeg().toBuffer().then((b) => new Uint8Array(b));

/** A verification .bin of `pairs` pairs (same, different, same, ...); `edit` may spoil its images. */
async function binFile(dir: string, pairs: number, edit: (images: Uint8Array[]) => Promise<void> | void = () => {}, issame?: boolean[]) {
  const images = await Promise.all(Array.from({ length: 2 * pairs }, (_, i) => jpeg(i)));
  await edit(images);
  const path = join(dir, 'pairs.bin');
  await writeFile(path, writeVerificationBin(images, issame ?? Array.from({ length: pairs }, (_, p) => p % 2 === 0)));
  return path;
}

const withBin = (dir: string, path: string) => tinyConfig(dir, { data: { ...tinyConfig(dir).data, eval: [{ name: 'bin', path }] } });

describe('verification sets are checked in full before training', () => {
  test('a truncated JPEG at image 5 stops the run before its first step, naming the image', async () => {
    const dir = await tmp();
    const path = await binFile(dir, 10, (images) => { images[5] = images[5].subarray(0, 30); });
    await expect(train(withBin(dir, path), cpuOptions())).rejects.toThrow(/pairs\.bin image 5: cannot decode image/);
    expect(await readFile(join(dir, CHECKPOINT_FILE)).catch(() => null)).toBeNull();
  });
  test('an image of another size, too few pairs, or one kind of pair', async () => {
    const dir = await tmp();
    const odd = await binFile(dir, 10, async (images) => { images[3] = await jpeg(3, 24); });
    await expect(train(withBin(dir, odd), cpuOptions())).rejects.toThrow(/verification set pairs \(.*pairs\.bin\): image 3 is 24x24, the backbone takes 16x16/);
    const few = await binFile(await tmp(), 4);
    await expect(train(withBin(dir, few), cpuOptions())).rejects.toThrow(/verification set pairs: 4 pairs; at least 10 are needed/);
    const same = await binFile(await tmp(), 10, () => {}, Array(10).fill(true));
    await expect(train(withBin(dir, same), cpuOptions())).rejects.toThrow(/verification set pairs: 10 same and 0 different pairs; both kinds are needed/);
  });
});

/** insightface's layout: header record 0 ([first identity record, end]), images 1..n, identity records. */
async function recordSet(dir: string, labels: number[], classes: number, header = true) {
  const n = labels.length;
  const records = [];
  if (header) records.push({ key: 0, data: packRecord({ label: [n + 1, n + 1 + classes] }, new Uint8Array(0)) });
  for (let i = 0; i < n; i++) records.push({ key: i + 1, data: packRecord({ label: labels[i], id: i + 1 }, await jpeg(i)) });
  if (header) for (let c = 0; c < classes; c++) records.push({ key: n + 1 + c, data: packRecord({ label: [1, 2] }, new Uint8Array(0)) });
  const { rec, idx } = writeRecordIO(records);
  await writeFile(join(dir, 'train.rec'), rec);
  await writeFile(join(dir, 'train.idx'), idx);
  return { rec: join(dir, 'train.rec'), idx: join(dir, 'train.idx') };
}

describe('fr eval checks its sets too', () => {
  test('too few pairs before embedding; an image of another size when it is embedded', async () => {
    const dir = await tmp();
    await train(tinyConfig(dir, { steps: 1, data: { ...tinyConfig(dir).data, eval: [] } }), cpuOptions());
    const few = await binFile(await tmp(), 4);
    await expect(evalCommand(dir, [{ name: 'bin', path: few }], plugins, createCpuBackend())).rejects.toThrow(/verification set pairs: 4 pairs; at least 10 are needed/);
    const odd = await binFile(await tmp(), 10, async (images) => { images[7] = await jpeg(7, 24); });
    await expect(evalCommand(dir, [{ name: 'bin', path: odd }], plugins, createCpuBackend())).rejects.toThrow(/verification set pairs \(.*pairs\.bin\): image 7 is 24x24, the set's images are 16x16/);
  });
});

describe('fr embed', () => {
  test('leaves hidden files out (macOS `._face.jpg` is not an image)', async () => {
    const dir = await tmp();
    await train(tinyConfig(dir, { steps: 1, data: { ...tinyConfig(dir).data, eval: [] } }), cpuOptions());
    const photos = join(await tmp(), 'photos');
    await mkdir(join(photos, '.thumbnails'), { recursive: true });
    await writeFile(join(photos, 'a.jpg'), await jpeg(1, 40));
    await writeFile(join(photos, '._a.jpg'), 'AppleDouble');
    await writeFile(join(photos, '.thumbnails', 'a.jpg'), await jpeg(2, 8));
    const out = join(dir, 'embeddings.jsonl');
    expect(await embedFolder(dir, photos, out, plugins, createCpuBackend())).toBe(1);
    expect((await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l).file)).toEqual(['a.jpg']);
  });
});

describe('RecordIO', () => {
  test('labels must be integers in [0, classes); the error names the record', async () => {
    const labels = Array.from({ length: 8 }, (_, i) => i % 4);
    labels[2] = 2.5;
    labels[5] = 99;
    labels[6] = Number.NaN;
    const source = await openSource({ kind: 'recordio', ...(await recordSet(await tmp(), labels, 4)) });
    expect(source.numClasses).toBe(4);
    await expect(source.load(2)).rejects.toThrow(/train\.rec record 3: label 2\.5 is not a class index \(an integer in \[0, 4\)\)/);
    await expect(source.label(5)).rejects.toThrow(/train\.rec record 6: label 99 is not a class index/);
    await expect(source.load(6)).rejects.toThrow(/train\.rec record 7: label NaN is not a class index/);
    expect((await source.load(1)).label).toBe(1);
  });
  test('a .rec without the header record is refused clearly', async () => {
    const paths = await recordSet(await tmp(), [0, 1, 0, 1], 2, false);
    await expect(openSource({ kind: 'recordio', ...paths })).rejects.toThrow(/train\.rec: no insightface header record .*the number of classes is unknown/);
  });
  test('a label out of range mid-run saves the last completed step and names the record', async () => {
    const dir = await tmp();
    const seed = 3;
    // The first sample the run meets at step 2 (and not before) gets a label out of range.
    const seen = new Set([...batchIndices(seed, 0, 8, 40), ...batchIndices(seed, 1, 8, 40)]);
    const bad = batchIndices(seed, 2, 8, 40).find((i) => !seen.has(i))!;
    const labels = Array.from({ length: 40 }, (_, i) => i % 5);
    labels[bad] = 7;
    await recordSet(dir, labels, 5);
    const config = tinyConfig(join(dir, 'run'), { data: { train: { name: 'recordio', path: dir }, eval: [] } });
    const e = await train(config, cpuOptions()).catch((err: Error) => err);
    expect((e as Error).message).toMatch(new RegExp(`train\\.rec record ${bad + 1}: label 7 is not a class index \\(an integer in \\[0, 5\\)\\)\\nthe checkpoint of step 2 is saved in`));
    expect(decodeSafetensors(await readFile(join(dir, 'run', CHECKPOINT_FILE))).metadata.step).toBe('2');
  });
});

describe('image folders', () => {
  test('hidden and empty class folders are skipped with a notice; every image must have the size of the first', async () => {
    const root = await tmp();
    for (const [name, count] of [['alice', 2], ['bob', 2], ['.git', 1], ['empty', 0], ['carol', 2]] as const) {
      await mkdir(join(root, name));
      for (let i = 0; i < count; i++) await writeFile(join(root, name, `${i}.jpg`), await jpeg(i + name.length, name === 'carol' && i === 1 ? 20 : 16));
    }
    await writeFile(join(root, 'alice', '._0.jpg'), 'AppleDouble');
    const source = await openSource({ kind: 'folder', root });
    expect(source.numClasses).toBe(3);
    expect(source.notices).toEqual([
      `${root}: skipped hidden folder(s) .git`,
      `${root}: skipped 1 class folder(s) without JPEG or PNG images: empty`,
      `${root}: skipped 1 hidden file(s) in class folders`,
    ]);
    const set = await openTrainingSet(tinyConfig(await tmp(), { data: { train: { name: 'folder', path: root } } }));
    expect(set.notices).toHaveLength(3);
    await expect(set.sample(5)).rejects.toThrow(new RegExp(`training data ${root}: image 5 \\(${root}/carol/1\\.jpg\\) is 20x20, the first is 16x16`));
  });
});

/** A PNG whose header declares `width` x `height` pixels (its data is a few bytes). */
function declaredPng(width: number, height: number): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]));
}

describe('image size limit', () => {
  test('an image declaring more pixels than the limit is refused before decoding', async () => {
    expect(MAX_IMAGE_PIXELS).toBe(40_000_000);
    await expect(sharpDecoder.decode(declaredPng(8000, 6000), 'huge.png')).rejects.toThrow('huge.png: the image declares more than 40000000 pixels; refused before decoding');
    // Under the limit, the same forged file fails as a broken image, not as too large.
    await expect(sharpDecoder.decode(declaredPng(64, 64), 'small.png')).rejects.toThrow(/small\.png: cannot decode image/);
  });
});
