/**
 * Sources the loader can rebuild inside a worker thread from a plain description (workers cannot
 * receive functions or open handles).
 */
import { DataError } from '@fr/core';
import type { RgbImage } from '../image.js';
import { SyntheticFaces, type SyntheticFacesOptions } from '../synthetic.js';
import { openRecordFile } from './files.js';
import { readFileBytes, scanImageFolder } from './folder.js';
import { sharpDecoder } from './sharp-decoder.js';

export type SourceSpec =
  | { kind: 'synthetic'; options: SyntheticFacesOptions }
  | { kind: 'recordio'; rec: string; idx?: string }
  | { kind: 'folder'; root: string };

export interface OpenSource {
  length: number;
  numClasses: number;
  /** Label and decoded image of sample i; throws DataError/FormatError for a bad sample. */
  load(i: number): Promise<{ image: RgbImage; label: number }>;
  /** Labels without decoding (for class counts and samplers). */
  label(i: number): Promise<number>;
}

export async function openSource(spec: SourceSpec): Promise<OpenSource> {
  switch (spec.kind) {
    case 'synthetic': {
      const set = new SyntheticFaces(spec.options);
      return {
        length: set.trainLength,
        numClasses: set.trainIdentities,
        load: async (i) => { const s = set.trainSample(i); return { image: s.image, label: s.label }; },
        label: async (i) => Math.floor(i / set.imagesPerIdentity),
      };
    }
    case 'recordio': {
      const ds = await openRecordFile(spec.rec, spec.idx);
      const numClasses = ds.identityRanges.length;
      return {
        length: ds.length,
        numClasses,
        load: async (i) => {
          const r = await ds.get(i);
          return { image: await sharpDecoder.decode(r.payload, `${spec.rec} record ${ds.keys[i]}`), label: Math.round(r.header.label) };
        },
        label: async (i) => Math.round((await ds.get(i)).header.label),
      };
    }
    case 'folder': {
      const f = await scanImageFolder(spec.root);
      return {
        length: f.files.length,
        numClasses: f.classes.length,
        load: async (i) => ({ image: await sharpDecoder.decode(await readFileBytes(f.files[i].path), f.files[i].path), label: f.files[i].label }),
        label: async (i) => f.files[i].label,
      };
    }
    default:
      throw new DataError(`unknown source kind ${(spec as { kind: string }).kind}`);
  }
}
