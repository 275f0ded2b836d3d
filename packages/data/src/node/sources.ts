/**
 * Sources the loader can rebuild inside a worker thread from a plain description (workers cannot
 * receive functions or open handles).
 */
import { DataError, FormatError } from '@fr/core';
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
  /** What the source left out and why (hidden or empty class folders), for the user to see. */
  notices?: string[];
  /** The file or record sample i comes from, for messages. */
  describe?(i: number): string;
}

/** A label as a class index: finite, an integer, in [0, numClasses); the error names the record. */
export function checkedLabel(label: number, numClasses: number, where: string): number {
  if (!(Number.isInteger(label) && label >= 0 && label < numClasses)) {
    throw new DataError(`${where}: label ${label} is not a class index (an integer in [0, ${numClasses}))`);
  }
  return label;
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
      if (numClasses === 0) {
        throw new FormatError(
          `${spec.rec}: no insightface header record (record 0, flag > 0, with the image and identity ranges), so the number of classes is unknown; write the set with insightface's tools (im2rec with identity records)`,
        );
      }
      const where = (i: number) => `${spec.rec} record ${ds.keys[i]}`;
      return {
        length: ds.length,
        numClasses,
        load: async (i) => {
          const r = await ds.get(i);
          const label = checkedLabel(r.header.label, numClasses, where(i));
          return { image: await sharpDecoder.decode(r.payload, where(i)), label };
        },
        label: async (i) => checkedLabel((await ds.get(i)).header.label, numClasses, where(i)),
        describe: where,
      };
    }
    case 'folder': {
      const f = await scanImageFolder(spec.root);
      return {
        length: f.files.length,
        numClasses: f.classes.length,
        load: async (i) => ({ image: await sharpDecoder.decode(await readFileBytes(f.files[i].path), f.files[i].path), label: f.files[i].label }),
        label: async (i) => f.files[i].label,
        notices: f.notices,
        describe: (i) => f.files[i].path,
      };
    }
    default:
      throw new DataError(`unknown source kind ${(spec as { kind: string }).kind}`);
  }
}
