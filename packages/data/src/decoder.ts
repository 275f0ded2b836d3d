/** One interface for JPEG/PNG decoding: sharp in Node (`@fr/data/node`), canvas APIs in browsers (`@fr/data/browser`). */
import type { RgbImage } from './image.js';

export interface ImageDecoder {
  /** Decodes JPEG or PNG bytes to 8-bit RGB. Throws a DataError naming `name` when it cannot. */
  decode(bytes: Uint8Array, name: string): Promise<RgbImage>;
}

/** The format from the magic bytes, for error messages and fast refusal. */
export function sniffFormat(bytes: Uint8Array): 'jpeg' | 'png' | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  return null;
}
