/**
 * The safetensors format (as the Python `safetensors` library reads it): an 8-byte little-endian
 * header length, a JSON header mapping names to {dtype, shape, data_offsets}, optional string
 * metadata under "__metadata__", then the raw little-endian data.
 */
import { FormatError } from './errors.js';

export type SafetensorsDType = 'F32' | 'I32' | 'F16';

export interface SafetensorsEntry {
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array | Int32Array | Uint16Array;
}

const BYTES: Record<SafetensorsDType, number> = { F32: 4, I32: 4, F16: 2 };

export function encodeSafetensors(tensors: Record<string, SafetensorsEntry>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new FormatError(`safetensors: ${name} has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    const bytes = count * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

export interface DecodedSafetensors {
  tensors: Record<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** Every dtype of the format (as the Python library knows them), with its size in bytes. */
const KNOWN_DTYPES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};

/** The Python library's bound on the header, so a corrupt length cannot make a reader allocate gigabytes. */
const MAX_HEADER_BYTES = 100_000_000;

interface RawEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses a safetensors file; `source` names it in error messages. Validates as the Python
 * `safetensors` library does: the header length, a JSON object, every entry with a known dtype, a
 * shape of non-negative integers and data_offsets in bounds; the tensors contiguous and
 * non-overlapping from the start of the data to its end; each size equal to shape x dtype.
 */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): DecodedSafetensors {
  if (bytes.length < 8) throw new FormatError(`${source}: ${bytes.length} bytes is too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) {
    throw new FormatError(`${source}: header length ${headerLength} runs past the end of the file (${bytes.length} bytes); truncated, or not a safetensors file?`);
  }
  if (headerLength > MAX_HEADER_BYTES) throw new FormatError(`${source}: header length ${headerLength} is over the format's limit of ${MAX_HEADER_BYTES} bytes`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new FormatError(`${source}: header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isRecord(header)) throw new FormatError(`${source}: header is ${describe(header)}, not a JSON object`);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: RawEntry[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = checkMetadata(entry, source);
      continue;
    }
    entries.push(checkEntry(name, entry, source, dataStart, bytes.length));
  }
  // Contiguous and non-overlapping, from byte 0 of the data to its last byte, as the Python reader demands.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) {
      const how = e.begin < expected ? 'overlaps the tensor before it' : `leaves a gap of ${e.begin - expected} bytes before it`;
      throw new FormatError(`${source}: tensor ${e.name} starts at data byte ${e.begin}, which ${how} (tensors must be contiguous from byte ${expected})`);
    }
    expected = e.end;
  }
  if (expected !== dataLength) {
    throw new FormatError(`${source}: the tensors cover ${expected} bytes of data, the file holds ${dataLength} after the header`);
  }
  const tensors: Record<string, SafetensorsEntry> = {};
  for (const e of entries) {
    // Copy into a fresh buffer: the data may not be aligned, and a Node Buffer's slice is a view.
    const raw = new Uint8Array(e.end - e.begin);
    raw.set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    const data = e.dtype === 'F32' ? new Float32Array(raw.buffer) : e.dtype === 'I32' ? new Int32Array(raw.buffer) : new Uint16Array(raw.buffer);
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data };
  }
  return { tensors, metadata };
}

function checkEntry(name: string, entry: unknown, source: string, dataStart: number, fileLength: number): RawEntry {
  const where = `${source}: tensor ${name}`;
  if (!isRecord(entry)) throw new FormatError(`${where} is ${describe(entry)}, not an object with dtype, shape and data_offsets`);
  const extra = Object.keys(entry).filter((k) => !['dtype', 'shape', 'data_offsets'].includes(k));
  if (extra.length) throw new FormatError(`${where} has unknown field ${extra.join(', ')} (allowed: dtype, shape, data_offsets)`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string') throw new FormatError(`${where} has no dtype`);
  if (!(dtype in KNOWN_DTYPES)) throw new FormatError(`${where} has dtype ${JSON.stringify(dtype)}, which is not a safetensors dtype (${Object.keys(KNOWN_DTYPES).join(', ')})`);
  if (!(dtype in BYTES)) throw new FormatError(`${where} has dtype ${dtype}; @fr reads F32, F16 and I32: convert it (torch: tensor.float())`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new FormatError(`${where} has shape ${JSON.stringify(shape)}; a shape is a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new FormatError(`${where} has data_offsets ${JSON.stringify(offsets)}; they are two non-negative integers [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new FormatError(`${where} has data_offsets [${begin}, ${end}]: end before begin`);
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const size = count * BYTES[dtype as SafetensorsDType];
  if (end - begin !== size) {
    throw new FormatError(`${where} spans ${end - begin} bytes, shape [${shape.join(', ')}] of ${dtype} needs ${size}`);
  }
  if (dataStart + end > fileLength) {
    throw new FormatError(`${where} ends at byte ${dataStart + end}, past the end of the file (${fileLength} bytes); truncated?`);
  }
  return { name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end };
}

function checkMetadata(entry: unknown, source: string): Record<string, string> {
  if (!isRecord(entry)) throw new FormatError(`${source}: __metadata__ is ${describe(entry)}, not an object of strings`);
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== 'string') throw new FormatError(`${source}: __metadata__.${k} is ${describe(v)}; metadata values are strings`);
  }
  return entry as Record<string, string>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}
