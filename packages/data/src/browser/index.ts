/** @fr/data/browser: decoding with createImageBitmap and OffscreenCanvas (browsers and workers). */
import { DataError } from '@fr/core';
import { type ImageDecoder, sniffFormat } from '../decoder.js';
import type { RgbImage } from '../image.js';

export const browserDecoder: ImageDecoder = {
  async decode(bytes: Uint8Array, name: string): Promise<RgbImage> {
    const format = sniffFormat(bytes);
    if (!format) throw new DataError(`${name}: not a JPEG or PNG`);
    let bitmap: ImageBitmap;
    try {
      bitmap = await createImageBitmap(new Blob([bytes as BlobPart], { type: `image/${format}` }), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    } catch (e) {
      throw new DataError(`${name}: cannot decode image: ${(e as Error).message}`);
    }
    const { width, height } = bitmap;
    const ctx = new OffscreenCanvas(width, height).getContext('2d');
    if (!ctx) throw new DataError(`${name}: no 2d context to read pixels`);
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    const rgba = ctx.getImageData(0, 0, width, height).data;
    const data = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) { data[j] = rgba[i]; data[j + 1] = rgba[i + 1]; data[j + 2] = rgba[i + 2]; }
    return { width, height, data };
  },
};
