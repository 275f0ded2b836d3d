import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError, FormatError } from '@fr/core';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { bufferSource, packRecord, RECORDIO_MAGIC, RecordDataset, SyntheticFaces, writeRecordIO } from '../src/index.js';
import { openRecordFile, resolvePairList, scanImageFolder, sharpDecoder } from '../src/node/index.js';

const set = new SyntheticFaces({ seed: 1, size: 32 });
const png = (id: number, k: number) => sharp(Buffer.from(set.sample(id, k).image.data), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();

async function insightfaceRec(): Promise<{ rec: Uint8Array; idx: string; images: Buffer[] }> {
  // 2 identities x 2 images: image ids 1..4, identity records 5..6, header record 0 = [5, 7].
  const images = [await png(0, 0), await png(0, 1), await png(1, 0), await png(1, 1)];
  const records = [
    { key: 0, data: packRecord({ label: [5, 7] }, new Uint8Array(0)) },
    ...images.map((img, i) => ({ key: i + 1, data: packRecord({ label: i < 2 ? 0 : 1, id: i + 1 }, img) })),
    { key: 5, data: packRecord({ label: [1, 3] }, new Uint8Array(0)) },
    { key: 6, data: packRecord({ label: [3, 5] }, new Uint8Array(0)) },
  ];
  return { ...writeRecordIO(records), images };
}

describe('RecordIO', () => {
  it('reads an insightface-layout set: header ranges, labels, payloads', async () => {
    const { rec, idx, images } = await insightfaceRec();
    const ds = await RecordDataset.open(bufferSource(rec, 'train.rec'), idx);
    expect(ds.length).toBe(4);
    expect(ds.identityRanges).toEqual([[1, 3], [3, 5]]);
    const r = await ds.get(2);
    expect(r.header.label).toBe(1);
    expect(r.header.id).toBe(3n);
    expect(Buffer.from(r.payload).equals(images[2])).toBe(true);
    const img = await sharpDecoder.decode(r.payload, 'r2');
    expect(Buffer.from(img.data).equals(Buffer.from(set.sample(1, 0).image.data))).toBe(true);
  });

  it('splits payloads containing the magic into parts (cflag 1/2/3) and restores it', async () => {
    const data = new Uint8Array(40);
    const v = new DataView(data.buffer);
    v.setUint32(8, RECORDIO_MAGIC, true);
    v.setUint32(20, RECORDIO_MAGIC, true);
    data[39] = 7;
    const { rec, idx } = writeRecordIO([{ key: 3, data }]);
    // Three parts: 8 bytes, 8 bytes, 16 bytes of payload, each with an 8-byte header.
    expect(rec.length).toBe(3 * 8 + 8 + 8 + 16);
    expect(new DataView(rec.buffer).getUint32(4, true) >>> 29).toBe(1);
    const ds = await RecordDataset.open(bufferSource(rec), idx);
    const raw = await ds.rec.read(0, rec.length);
    expect(raw.length).toBe(rec.length);
    const { readRecordAt } = await import('../src/recordio.js');
    expect(Buffer.from(await readRecordAt(bufferSource(rec), 0, rec.length)).equals(Buffer.from(data))).toBe(true);
  });

  it('names file and byte for a truncated .rec and an .idx pointing past the end', async () => {
    const { rec, idx } = await insightfaceRec();
    const cut = rec.subarray(0, rec.length - 200);
    const dir = mkdtempSync(join(tmpdir(), 'fr-rec-'));
    writeFileSync(join(dir, 'train.rec'), cut);
    writeFileSync(join(dir, 'train.idx'), idx);
    const err = await openRecordFile(join(dir, 'train.rec')).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect(err.message).toMatch(/train\.(idx: record \d+ points to byte \d+, past the end|rec: truncated record)/);
    // A .idx pointing inside the file but at a record cut short.
    const lastOffset = Number(idx.trim().split('\n').at(-1)!.split('\t')[1]);
    const ds = RecordDataset.open(bufferSource(rec.subarray(0, lastOffset + 12), 'cut.rec'), idx);
    await expect(ds).rejects.toThrow(FormatError);
    await expect(RecordDataset.open(bufferSource(rec, 'x.rec'), '0\t0\n1\t999999\n', 'x.idx')).rejects.toThrow('x.idx: record 1 points to byte 999999, past the end of x.rec');
    await expect(RecordDataset.open(bufferSource(rec, 'x.rec'), '0\t4\n', 'x.idx')).rejects.toThrow(/x\.rec: bad magic 0x[0-9a-f]+ at byte 4 \(record 0\)/);
    await expect(RecordDataset.open(bufferSource(rec, 'x.rec'), 'zero\t0\n', 'x.idx')).rejects.toThrow(/x\.idx: line 1 is not/);
  });
});

describe('decoding and folders', () => {
  it('decodes JPEG and PNG to RGB and names undecodable images', async () => {
    const rgb = Buffer.from(set.sample(2, 0).image.data);
    const jpg = await sharp(rgb, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    const img = await sharpDecoder.decode(jpg, 'a.jpg');
    expect([img.width, img.height, img.data.length]).toEqual([32, 32, 3072]);
    let diff = 0;
    for (let i = 0; i < rgb.length; i++) diff += Math.abs(img.data[i] - rgb[i]);
    expect(diff / rgb.length).toBeLessThan(8);
    await expect(sharpDecoder.decode(new Uint8Array([1, 2, 3, 4]), 'junk.jpg')).rejects.toThrow(/junk\.jpg: not a JPEG or PNG \(first bytes 01020304\)/);
    await expect(sharpDecoder.decode(jpg.subarray(0, 100), 'cut.jpg')).rejects.toThrow(DataError);
  });

  it('scans an image folder and resolves a pair list, naming a missing image by line', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fr-folder-'));
    for (const name of ['Bob', 'Alice']) {
      mkdirSync(join(root, name));
      for (let k = 1; k <= 2; k++) writeFileSync(join(root, name, `${name}_000${k}.png`), await png(name === 'Bob' ? 0 : 1, k));
    }
    const f = await scanImageFolder(root);
    expect(f.classes).toEqual(['Alice', 'Bob']);
    expect(f.files.map((x) => x.label)).toEqual([0, 0, 1, 1]);
    const pairs = await resolvePairList('1\t1\nAlice\t1\t2\nAlice\t1\tBob\t2\n', root, 'pairs.txt', 'png');
    expect(pairs.map((p) => p.same)).toEqual([true, false]);
    await expect(resolvePairList('1\t1\nAlice\t1\t2\nBob\t1\t3\n', root, 'pairs.txt', 'png')).rejects.toThrow('pairs.txt: line 3 names Bob/Bob_0003.png, which is not in');
  });
});
