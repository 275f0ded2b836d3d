/**
 * A strict reader of zip archives as torch.save writes them: entries stored uncompressed (torch's
 * writer never deflates), found through the central directory, zip64 records understood. A
 * deflated entry is read only when the caller passes an `inflate` function (Node's
 * zlib.inflateRawSync, for instance), so this module stays free of Node imports. Every
 * inconsistency (truncation, a missing local header, an unknown method
 * or a failed CRC-32) is a FormatError naming the file.
 */
import { FormatError } from '@fr/core';

export interface ZipOptions {
  /** Decompresses raw deflate data (method 8); without it a deflated entry is an error. */
  inflate?: (data: Uint8Array) => Uint8Array;
}

export interface ZipEntry {
  name: string;
  /** The entry's bytes (a view into the archive for stored entries). */
  data: Uint8Array;
}

let table: Uint32Array | null = null;

/** CRC-32 (the zip polynomial) of `bytes`. */
export function crc32(bytes: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const EOCD = 0x06054b50, EOCD64 = 0x06064b50, EOCD64_LOCATOR = 0x07064b50, CENTRAL = 0x02014b50, LOCAL = 0x04034b50;

/** The entries of a zip archive, in directory order. `file` names it in errors. */
export function readZip(bytes: Uint8Array, file: string, options: ZipOptions = {}): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new FormatError(`${file}: not a readable zip archive: ${why}`);
  };
  const u16 = (o: number) => view.getUint16(o, true);
  const u32 = (o: number) => view.getUint32(o, true);
  const u64 = (o: number) => {
    const hi = view.getUint32(o + 4, true);
    if (hi >= 0x200000) fail(`a 64-bit size at byte ${o} does not fit in 2^53`);
    return hi * 4294967296 + view.getUint32(o, true);
  };
  // The end-of-central-directory record: 22 bytes plus a comment of up to 65535 bytes.
  let eocd = -1;
  for (let o = bytes.length - 22; o >= Math.max(0, bytes.length - 22 - 65535); o--) {
    if (u32(o) === EOCD && o + 22 + u16(o + 20) === bytes.length) { eocd = o; break; }
  }
  if (eocd < 0) fail(bytes.length < 22 ? `${bytes.length} bytes` : 'no end-of-central-directory record (truncated?)');
  let count = u16(eocd + 10);
  let dirSize = u32(eocd + 12);
  let dirOffset = u32(eocd + 16);
  if (eocd >= 20 && u32(eocd - 20) === EOCD64_LOCATOR) {
    const at = u64(eocd - 12);
    if (at + 56 > bytes.length || u32(at) !== EOCD64) fail('the zip64 locator points at no zip64 record');
    count = u64(at + 32);
    dirSize = u64(at + 40);
    dirOffset = u64(at + 48);
  }
  if (dirOffset + dirSize > bytes.length) fail(`the central directory (${dirSize} bytes at ${dirOffset}) runs past the end (${bytes.length} bytes; truncated?)`);
  const entries: ZipEntry[] = [];
  let p = dirOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dirOffset + dirSize || u32(p) !== CENTRAL) fail(`central directory entry ${i} is missing or damaged`);
    const flags = u16(p + 8), method = u16(p + 10), crc = u32(p + 16);
    let compressed = u32(p + 20), size = u32(p + 24);
    const nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32);
    let local = u32(p + 42);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLength));
    // zip64 extra field: the 64-bit values of those 32-bit fields that read 0xffffffff, in order.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = u16(e), len = u16(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) { size = u64(q); q += 8; }
        if (compressed === 0xffffffff) { compressed = u64(q); q += 8; }
        if (local === 0xffffffff) local = u64(q);
      }
      e += 4 + len;
    }
    if (flags & 1) fail(`entry ${name} is encrypted`);
    if (local + 30 > bytes.length || u32(local) !== LOCAL) fail(`entry ${name}: no local header at byte ${local} (truncated?)`);
    const start = local + 30 + u16(local + 26) + u16(local + 28);
    if (start + compressed > bytes.length) fail(`entry ${name}: ${compressed} bytes at ${start} run past the end (${bytes.length} bytes; truncated?)`);
    const raw = bytes.subarray(start, start + compressed);
    let data: Uint8Array;
    if (method === 0) {
      if (compressed !== size) fail(`stored entry ${name} has compressed size ${compressed} and size ${size}`);
      data = raw;
    } else if (method === 8) {
      if (!options.inflate) fail(`entry ${name} is deflated, and no inflate function was given (torch.save writes stored entries)`);
      data = options.inflate!(raw);
      if (data.length !== size) fail(`entry ${name} inflates to ${data.length} bytes, the directory says ${size}`);
    } else {
      data = fail(`entry ${name} uses compression method ${method} (only stored and deflate are read)`);
    }
    if (crc32(data) !== crc) fail(`entry ${name} fails its CRC-32 check (damaged?)`);
    entries.push({ name, data });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}
