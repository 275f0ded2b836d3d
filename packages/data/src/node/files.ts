import { open, readFile, stat } from 'node:fs/promises';
import { FormatError } from '@fr/core';
import { readVerificationBin, type VerificationBin } from '../pickle.js';
import { type ByteSource, RecordDataset } from '../recordio.js';

/** A ByteSource over a file, read with positional reads (the file is opened per read batch). */
export function fileSource(path: string): ByteSource {
  let size: number | undefined;
  return {
    name: path,
    size: async () => (size ??= (await stat(path)).size),
    read: async (offset, length) => {
      const fh = await open(path, 'r');
      try {
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        return new Uint8Array(buf.buffer, buf.byteOffset, bytesRead);
      } finally {
        await fh.close();
      }
    },
  };
}

/** Opens train.rec with its train.idx (default: the same path with .idx). */
export async function openRecordFile(recPath: string, idxPath = recPath.replace(/\.rec$/, '.idx')): Promise<RecordDataset> {
  let text: string;
  try {
    text = await readFile(idxPath, 'utf8');
  } catch (e) {
    throw new FormatError(`${idxPath}: cannot read the index: ${(e as Error).message}`);
  }
  return RecordDataset.open(fileSource(recPath), text, idxPath);
}

/** Reads lfw.bin, cfp_fp.bin, agedb_30.bin and the like. */
export async function readVerificationFile(path: string): Promise<VerificationBin> {
  return readVerificationBin(new Uint8Array(await readFile(path)), path);
}
