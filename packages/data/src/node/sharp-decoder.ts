import { DataError } from '@fr/core';
import sharp from 'sharp';
import { type ImageDecoder, sniffFormat } from '../decoder.js';
import type { RgbImage } from '../image.js';

/** Decodes with sharp (libvips): alpha removed, greyscale expanded, always 3 channels. */
export const sharpDecoder: ImageDecoder = {
  async decode(bytes: Uint8Array, name: string): Promise<RgbImage> {
    if (!sniffFormat(bytes)) throw new DataError(`${name}: not a JPEG or PNG (first bytes ${Buffer.from(bytes.subarray(0, 4)).toString('hex') || 'none'})`);
    try {
      const { data, info } = await sharp(bytes, { failOn: 'error' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new Error(`${info.channels} channels after conversion`);
      return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
    } catch (e) {
      throw new DataError(`${name}: cannot decode image: ${(e as Error).message}`);
    }
  },
};
