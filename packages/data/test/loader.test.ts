import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { augmentInto, epochOrder, SyntheticFaces } from '../src/index.js';
import { Loader } from '../src/node/index.js';

const source = { kind: 'synthetic' as const, options: { seed: 2, size: 32, trainIdentities: 12, imagesPerIdentity: 5 } };

async function collect(workers: number) {
  const loader = await Loader.create({ source, batchSize: 8, size: 32, seed: 11, workers, augment: { flip: 0.5, cropPad: 2, colorJitter: 0.2 } });
  const out = [];
  for await (const b of loader.epoch(1)) out.push(b);
  await loader.close();
  return out;
}

describe('loader', () => {
  it('gives identical batches with 0 and 2 workers', async () => {
    const a = await collect(0);
    const b = await collect(2);
    expect(a).toHaveLength(7); // 60 samples, batches of 8, last dropped
    for (let s = 0; s < a.length; s++) {
      expect(Array.from(b[s].indices)).toEqual(Array.from(a[s].indices));
      expect(Array.from(b[s].labels)).toEqual(Array.from(a[s].labels));
      expect(Buffer.from(b[s].images.buffer).equals(Buffer.from(a[s].images.buffer))).toBe(true);
    }
    expect(Array.from(a[0].indices)).toEqual(Array.from(epochOrder(60, 11, 1).subarray(0, 8)));
    expect(Array.from(a[0].labels)).toEqual(Array.from(a[0].indices, (i) => Math.floor(i / 5)));
  });

  it('normalises to (x/255 - 0.5)/0.5 in CHW and flips deterministically', () => {
    const img = { width: 2, height: 1, data: Uint8Array.from([0, 255, 51, 255, 0, 102]) };
    const out = new Float32Array(6);
    augmentInto(img, out, 0, 1, { flip: 0 });
    expect(Array.from(out)).toEqual([-1, 1, 1, -1, 51 / 127.5 - 1, 102 / 127.5 - 1].map(Math.fround));
    augmentInto(img, out, 0, 1, { flip: 1 });
    expect(Array.from(out)).toEqual([1, -1, -1, 1, 102 / 127.5 - 1, 51 / 127.5 - 1].map(Math.fround));
  });

  it('skips and counts bad images when asked, fails with the file name otherwise', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fr-loader-'));
    const faces = new SyntheticFaces({ size: 32 });
    for (const id of [0, 1]) {
      mkdirSync(join(root, `id${id}`));
      for (let k = 0; k < 3; k++) {
        const png = await sharp(Buffer.from(faces.sample(id, k).image.data), { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
        writeFileSync(join(root, `id${id}`, `${k}.png`), png);
      }
    }
    writeFileSync(join(root, 'id1', 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0, 1, 2]));
    const skipping = await Loader.create({ source: { kind: 'folder', root }, batchSize: 7, size: 32, skipBad: true, workers: 1 });
    const batches = [];
    for await (const b of skipping.epoch(0)) batches.push(b);
    await skipping.close();
    expect(batches).toHaveLength(1);
    expect(batches[0].labels.length).toBe(6);
    expect(skipping.skipped).toHaveLength(1);
    expect(skipping.skipped[0].message).toMatch(/broken\.jpg: cannot decode image/);
    const strict = await Loader.create({ source: { kind: 'folder', root }, batchSize: 7, size: 32 });
    await expect((async () => { for await (const _ of strict.epoch(0)) void _; })()).rejects.toThrow(/broken\.jpg: cannot decode image/);
  });
});
