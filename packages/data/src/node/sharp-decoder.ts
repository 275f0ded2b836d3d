import { DataError } from '@fr/core';
import sharp from 'sharp';
import { type ImageDecoder, sniffFormat } from '../decoder.js';
import type { RgbImage } from '../image.js';

/**
 * Images with more pixels than this are refused from their header, before decoding: a face image
 * is far smaller, and a forged header would otherwise make libvips allocate gigabytes.
 */
export const MAX_IMAGE_PIXELS = 40_000_000;

/** Decodes with sharp (libvips): alpha removed, greyscale expanded, always 3 channels. */
export const sharpDecoder: ImageDecoder = {
  async decode(bytes: Uint8Array, name: string): Promise<RgbImage> {
    if (!sniffFormat(bytes)) throw new DataError(`${name}: not a JPEG or PNG (first bytes ${Buffer.from(bytes.subarray(0, 4)).toString('hex') || 'none'})`);
    try {
      const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_IMAGE_PIXELS }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new Error(`${info.channels} channels after conversion`);
      return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
    } catch (e) {
      const message = (e as Error).message;
      if (/pixel limit/i.test(message)) throw new DataError(`${name}: the image declares more than ${MAX_IMAGE_PIXELS} pixels; refused before decoding`);
      throw new DataError(`${name}: cannot decode image: ${message}`);
    }
  },
};
