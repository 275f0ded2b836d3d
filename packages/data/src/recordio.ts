/**
 * insightface's MXNet RecordIO training sets (train.rec + train.idx). Framing (dmlc-core
 * recordio): each part is uint32 magic 0xced7230a, uint32 lrec (cflag = lrec >> 29, length =
 * lrec & (2^29 - 1)), the payload, zero padding to 4 bytes. A record whose payload contains the
 * magic at a 4-aligned position is split there into parts with cflag 1 (first), 2 (middle), 3
 * (last); the reader puts the magic back between parts. The payload is an IRHeader '<IfQQ'
 * (flag, label, id, id2), then `flag` float32 labels when flag > 0, then the JPEG or PNG bytes.
 * Record 0 is a header whose label [a, b] says images are ids 1..a-1 and identity records a..b-1.
 */
import { FormatError } from '@fr/core';

export const RECORDIO_MAGIC = 0xced7230a;

/** Random access to the bytes of a file (a Node file handle, a Blob, a buffer). */
export interface ByteSource {
  readonly name: string;
  size(): Promise<number>;
  /** Reads up to `length` bytes at `offset` (fewer only at the end). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export function bufferSource(bytes: Uint8Array, name = '<buffer>'): ByteSource {
  return {
    name,
    size: async () => bytes.length,
    read: async (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length)),
  };
}

export interface IRHeader {
  flag: number;
  /** label (flag == 0) or labels[0]. */
  label: number;
  /** All labels when flag > 0. */
  labels: Float32Array;
  id: bigint;
  id2: bigint;
}

export interface Record {
  header: IRHeader;
  /** The encoded image (empty for header and identity records). */
  payload: Uint8Array;
}

/** Parses '<IfQQ' and the optional label array. */
export function unpackRecord(data: Uint8Array, where: string): Record {
  if (data.length < 24) throw new FormatError(`${where}: record of ${data.length} bytes is shorter than its 24-byte IRHeader`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const flag = v.getUint32(0, true);
  const label = v.getFloat32(4, true);
  const id = v.getBigUint64(8, true), id2 = v.getBigUint64(16, true);
  if (24 + 4 * flag > data.length) throw new FormatError(`${where}: IRHeader flag ${flag} announces more labels than the record holds`);
  const labels = new Float32Array(flag);
  for (let i = 0; i < flag; i++) labels[i] = v.getFloat32(24 + 4 * i, true);
  return { header: { flag, label: flag > 0 ? labels[0] : label, labels, id, id2 }, payload: data.subarray(24 + 4 * flag) };
}

export function packRecord(h: { label: number | readonly number[]; id?: number; id2?: number }, payload: Uint8Array): Uint8Array {
  const labels = typeof h.label === 'number' ? [] : h.label;
  const out = new Uint8Array(24 + 4 * labels.length + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, labels.length, true);
  v.setFloat32(4, typeof h.label === 'number' ? h.label : 0, true);
  v.setBigUint64(8, BigInt(h.id ?? 0), true);
  v.setBigUint64(16, BigInt(h.id2 ?? 0), true);
  labels.forEach((l, i) => v.setFloat32(24 + 4 * i, l, true));
  out.set(payload, 24 + 4 * labels.length);
  return out;
}

/** Reads the framed record at `offset`; `name` and `key` go into error messages. */
export async function readRecordAt(src: ByteSource, offset: number, fileSize: number, key?: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const what = key === undefined ? '' : ` (record ${key})`;
  let pos = offset;
  for (;;) {
    if (pos + 8 > fileSize) throw new FormatError(`${src.name}: truncated record header at byte ${pos}${what}: file has ${fileSize} bytes`);
    const head = await src.read(pos, 8);
    const v = new DataView(head.buffer, head.byteOffset, 8);
    const magic = v.getUint32(0, true);
    if (magic !== RECORDIO_MAGIC) throw new FormatError(`${src.name}: bad magic 0x${magic.toString(16)} at byte ${pos}${what}`);
    const lrec = v.getUint32(4, true);
    const cflag = lrec >>> 29, length = lrec & 0x1fffffff;
    if (pos + 8 + length > fileSize) throw new FormatError(`${src.name}: truncated record at byte ${pos}${what}: ${length} bytes announced, ${fileSize - pos - 8} left`);
    const expectFirst = parts.length === 0;
    if (expectFirst ? cflag !== 0 && cflag !== 1 : cflag !== 2 && cflag !== 3) {
      throw new FormatError(`${src.name}: unexpected continuation flag ${cflag} at byte ${pos}${what}`);
    }
    parts.push(await src.read(pos + 8, length));
    pos += 8 + length + ((4 - (length % 4)) % 4);
    if (cflag === 0 || cflag === 3) break;
  }
  if (parts.length === 1) return parts[0];
  const total = parts.reduce((a, p) => a + p.length, 0) + 4 * (parts.length - 1);
  const out = new Uint8Array(total);
  const mv = new DataView(out.buffer);
  let o = 0;
  parts.forEach((p, i) => {
    out.set(p, o);
    o += p.length;
    if (i < parts.length - 1) { mv.setUint32(o, RECORDIO_MAGIC, true); o += 4; }
  });
  return out;
}

/** Parses train.idx: lines "key\toffset". */
export function parseIdx(text: string, name: string): Map<number, number> {
  const out = new Map<number, number>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const m = /^(\d+)\s+(\d+)\s*$/.exec(line);
    if (!m) throw new FormatError(`${name}: line ${i + 1} is not "key<TAB>offset": ${JSON.stringify(line.slice(0, 60))}`);
    out.set(Number(m[1]), Number(m[2]));
  });
  return out;
}

/** A RecordIO training set: image records with integer labels. */
export class RecordDataset {
  private constructor(
    readonly rec: ByteSource,
    readonly idxName: string,
    private readonly index: Map<number, number>,
    private readonly fileSize: number,
    /** Image record keys, in order. */
    readonly keys: number[],
    readonly identityRanges: [number, number][],
  ) {}

  /** Opens a set from its .rec source and the text of its .idx. */
  static async open(rec: ByteSource, idxText: string, idxName = 'train.idx'): Promise<RecordDataset> {
    const index = parseIdx(idxText, idxName);
    const fileSize = await rec.size();
    for (const [key, off] of index) {
      if (off + 8 > fileSize) throw new FormatError(`${idxName}: record ${key} points to byte ${off}, past the end of ${rec.name} (${fileSize} bytes)`);
    }
    let keys = [...index.keys()].sort((a, b) => a - b);
    const ranges: [number, number][] = [];
    if (index.has(0)) {
      const h0 = unpackRecord(await readRecordAt(rec, index.get(0)!, fileSize, 0), `${rec.name} record 0`).header;
      if (h0.flag > 0) {
        // insightface: images are 1..label[0]-1; identity records label[0]..label[1]-1 give ranges.
        const [a, b] = [Math.round(h0.labels[0]), Math.round(h0.labels[1])];
        keys = keys.filter((k) => k >= 1 && k < a);
        for (let k = a; k < b; k++) {
          const off = index.get(k);
          if (off === undefined) throw new FormatError(`${idxName}: identity record ${k} (from the header range ${a}..${b - 1}) is missing`);
          const h = unpackRecord(await readRecordAt(rec, off, fileSize, k), `${rec.name} record ${k}`).header;
          ranges.push([Math.round(h.labels[0]), Math.round(h.labels[1])]);
        }
      }
    }
    return new RecordDataset(rec, idxName, index, fileSize, keys, ranges);
  }

  get length(): number {
    return this.keys.length;
  }

  /** The i-th image record (header with label, encoded payload). */
  async get(i: number): Promise<Record> {
    const key = this.keys[i];
    if (key === undefined) throw new FormatError(`${this.rec.name}: image ${i} outside 0..${this.keys.length - 1}`);
    return unpackRecord(await readRecordAt(this.rec, this.index.get(key)!, this.fileSize, key), `${this.rec.name} record ${key}`);
  }
}

/** Writes records as MXIndexedRecordIO does: returns the .rec bytes and the .idx text. */
export function writeRecordIO(records: readonly { key: number; data: Uint8Array }[]): { rec: Uint8Array; idx: string } {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const lines: string[] = [];
  const frame = (cflag: number, data: Uint8Array) => {
    const pad = (4 - (data.length % 4)) % 4;
    const b = new Uint8Array(8 + data.length + pad);
    const v = new DataView(b.buffer);
    v.setUint32(0, RECORDIO_MAGIC, true);
    v.setUint32(4, ((cflag << 29) | data.length) >>> 0, true);
    b.set(data, 8);
    parts.push(b);
    offset += b.length;
  };
  for (const { key, data } of records) {
    lines.push(`${key}\t${offset}`);
    // Split at every 4-aligned occurrence of the magic, dropping it (the reader restores it).
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const cuts: number[] = [];
    for (let i = 0; i + 4 <= data.length; i += 4) if (v.getUint32(i, true) === RECORDIO_MAGIC) cuts.push(i);
    if (cuts.length === 0) { frame(0, data); continue; }
    let start = 0;
    cuts.forEach((c, j) => { frame(j === 0 ? 1 : 2, data.subarray(start, c)); start = c + 4; });
    frame(3, data.subarray(start));
  }
  const rec = new Uint8Array(offset);
  let o = 0;
  for (const p of parts) { rec.set(p, o); o += p.length; }
  return { rec, idx: lines.join('\n') + '\n' };
}
