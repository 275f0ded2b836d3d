/** Node-only helpers of @fr/core: atomic checkpoint files. */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { serializeCheckpoint, restoreCheckpoint, type CheckpointContents } from '../checkpoint.js';
import type { NamedTensor } from '../loss.js';
import { FormatError } from '../errors.js';

/** Writes bytes to `path` atomically: a temporary file in the same folder, then a rename. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    // A full disk or a read-only folder: the previous file stays as it was, and no temporary is left.
    await rm(tmp, { force: true }).catch(() => {});
    const error = e as NodeJS.ErrnoException;
    throw new FormatError(`cannot write ${path}: ${error.code ?? 'error'} (${error.message}); the previous file, if any, is unchanged`, { cause: e });
  }
}

/** Saves a checkpoint atomically; a crash mid-write leaves the previous file intact. */
export async function saveCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  await writeFileAtomic(path, await serializeCheckpoint(contents));
}

/** Loads a checkpoint file into existing tensors; returns its metadata. */
export async function loadCheckpoint(path: string, into: readonly NamedTensor[],
  options: { allowExtra?: boolean } = {}): Promise<Record<string, string>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new FormatError(`checkpoint ${path}: cannot read (${(e as Error).message})`);
  }
  return restoreCheckpoint(bytes, into, { source: path, allowExtra: options.allowExtra });
}
