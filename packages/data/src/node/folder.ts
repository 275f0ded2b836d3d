import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from '@fr/core';

const IMAGE = /\.(jpe?g|png)$/i;

export interface FolderDataset {
  root: string;
  /** Identity names in label order (sorted sub-folder names). */
  classes: string[];
  files: { path: string; label: number }[];
  /** What was left out and why (hidden entries, class folders without images), for the user to see. */
  notices: string[];
}

const hidden = (name: string) => name.startsWith('.');

/**
 * An image folder: one sub-folder per identity, JPEG/PNG files inside; labels by sorted folder
 * name. Hidden entries (`.git`, `.DS_Store`, `._face.jpg`) and class folders without images are
 * left out, each with a notice, so they take no label.
 */
export async function scanImageFolder(root: string): Promise<FolderDataset> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    throw new DataError(`${root}: cannot list the image folder: ${(e as Error).message}`);
  }
  const notices: string[] = [];
  const hiddenFolders = entries.filter((e) => e.isDirectory() && hidden(e.name)).map((e) => e.name).sort();
  if (hiddenFolders.length) notices.push(`${root}: skipped hidden folder(s) ${hiddenFolders.join(', ')}`);
  const folders = entries.filter((e) => e.isDirectory() && !hidden(e.name)).map((e) => e.name).sort();
  const classes: string[] = [];
  const files: FolderDataset['files'] = [];
  const empty: string[] = [];
  let hiddenFiles = 0;
  for (const c of folders) {
    const all = await readdir(join(root, c));
    hiddenFiles += all.filter(hidden).length;
    const names = all.filter((n) => !hidden(n) && IMAGE.test(n)).sort();
    if (names.length === 0) {
      empty.push(c);
      continue;
    }
    const label = classes.push(c) - 1;
    for (const n of names) files.push({ path: join(root, c, n), label });
  }
  if (empty.length) notices.push(`${root}: skipped ${empty.length} class folder(s) without JPEG or PNG images: ${empty.slice(0, 10).join(', ')}${empty.length > 10 ? ', ...' : ''}`);
  if (hiddenFiles) notices.push(`${root}: skipped ${hiddenFiles} hidden file(s) in class folders`);
  if (classes.length === 0) throw new DataError(`${root}: no identity sub-folders with JPEG or PNG images`);
  return { root, classes, files, notices };
}

export async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new DataError(`${path}: cannot read: ${(e as Error).message}`);
  }
}

/**
 * Resolves a pair list (LFW pairs.txt layout: "name idx1 idx2" for same, "name1 idx1 name2 idx2"
 * for different; a first line with the fold counts is skipped) against an image folder laid out as
 * name/name_0001.jpg. A pair naming a missing image is a DataError with the line number.
 */
export async function resolvePairList(text: string, root: string, listName = 'pairs.txt', ext = 'jpg'): Promise<{ a: string; b: string; same: boolean }[]> {
  const out: { a: string; b: string; same: boolean }[] = [];
  const present = new Map<string, Set<string>>();
  const exists = async (name: string, file: string) => {
    let s = present.get(name);
    if (!s) {
      try { s = new Set(await readdir(join(root, name))); } catch { s = new Set(); }
      present.set(name, s);
    }
    return s.has(file);
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i].trim().split(/\s+/).filter(Boolean);
    if (f.length === 0 || (i === 0 && f.length <= 2)) continue;
    const img = (name: string, idx: string) => `${name}_${idx.padStart(4, '0')}.${ext}`;
    let pair: [string, string, string, string];
    if (f.length === 3) pair = [f[0], img(f[0], f[1]), f[0], img(f[0], f[2])];
    else if (f.length === 4) pair = [f[0], img(f[0], f[1]), f[2], img(f[2], f[3])];
    else throw new DataError(`${listName}: line ${i + 1} has ${f.length} fields, expected 3 or 4`);
    for (const [name, file] of [[pair[0], pair[1]], [pair[2], pair[3]]]) {
      if (!(await exists(name, file))) throw new DataError(`${listName}: line ${i + 1} names ${join(name, file)}, which is not in ${root}`);
    }
    out.push({ a: join(root, pair[0], pair[1]), b: join(root, pair[2], pair[3]), same: f.length === 3 });
  }
  return out;
}
