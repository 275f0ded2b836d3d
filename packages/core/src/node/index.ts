/** Node-only helpers of @fr/core: atomic checkpoint files. */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { serializeCheckpoint, restoreCheckpoint, type CheckpointContents } from '../checkpoint.js';
import type { NamedTensor } from '../loss.js';
import { FormatError } from '../errors.js';

/** Writes bytes to `path` atomically: a temporary file in the same folder, then a rename. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

/** Saves a checkpoint atomically; a crash mid-write leaves the previous file intact. */
export async function saveCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  await writeFileAtomic(path, await serializeCheckpoint(contents));
}

/** Loads a checkpoint file into existing tensors; returns its metadata. */
export async function loadCheckpoint(
  path: string,
  into: readonly NamedTensor[],
  options: { allowExtra?: boolean } = {},
): Promise<Record<string, string>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new FormatError(`checkpoint ${path}: cannot read (${(e as Error).message})`);
  }
  return restoreCheckpoint(bytes, into, { source: path, allowExtra: options.allowExtra });
}
