/** `fr embed`: embeddings of every image of a folder, written as JSON lines. */
import { readdir } from 'node:fs/promises';
import { writeFileAtomic } from '@fr/core/node';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { DataError, type Backend } from '@fr/core';
import type { RgbImage } from '@fr/data';
import { MAX_IMAGE_PIXELS } from '@fr/data/node';
import { loadRun } from './commands.js';
import { embedSet } from './evaluate.js';
import type { Plugins } from './plugins.js';

const IMAGE = /\.(jpe?g|png|webp|bmp)$/i;

async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: Error) => {
    throw new DataError(`fr embed: cannot read folder ${dir} (${e.message})`);
  });
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name.startsWith('.')) continue; // .git, .DS_Store, macOS `._face.jpg` metadata files
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listImages(p)));
    else if (IMAGE.test(e.name)) out.push(p);
  }
  return out;
}

/** Decodes and resizes an image file to the network's input (RGB, `size` x `size`). */
async function readImage(file: string, size: number): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(file, { limitInputPixels: MAX_IMAGE_PIXELS }).removeAlpha().resize(size, size, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    throw new DataError(`fr embed: cannot decode ${file} (${(e as Error).message})`);
  }
}

export async function embedFolder(checkpoint: string, folder: string, outFile: string, plugins: Plugins, backend: Backend): Promise<number> {
  const run = await loadRun(checkpoint, plugins, backend);
  const files = await listImages(folder);
  if (files.length === 0) throw new DataError(`fr embed: no images (.jpg, .png, .webp, .bmp) under ${folder}`);
  const [, h, w] = run.inputShape;
  if (h !== w) throw new DataError(`fr embed: the network takes ${w}x${h} images; only square inputs are supported`);
  const images = await Promise.all(files.map((f) => readImage(f, w)));
  const embeddings = await embedSet(backend, run.module, {
    label: folder, issame: [], length: images.length, pairImages: new Int32Array(0), shape: [3, h, w], image: async (i) => images[i],
  }, run.embeddingDim);
  const lines = files.map((f, i) => JSON.stringify({
    file: relative(folder, f),
    embedding: Array.from(embeddings.subarray(i * run.embeddingDim, (i + 1) * run.embeddingDim), (v) => +v.toFixed(6)),
  }));
  await writeFileAtomic(outFile, `${lines.join('\n')}\n`);
  return files.length;
}
