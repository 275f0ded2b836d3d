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

/** Parses a safetensors file; `source` names it in error messages. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): DecodedSafetensors {
  if (bytes.length < 8) throw new FormatError(`${source}: ${bytes.length} bytes is too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) {
    throw new FormatError(`${source}: header length ${headerLength} runs past the end of the file (${bytes.length} bytes); truncated?`);
  }
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new FormatError(`${source}: header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const tensors: Record<string, SafetensorsEntry> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const e = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!(e.dtype in BYTES)) throw new FormatError(`${source}: tensor ${name} has unsupported dtype ${e.dtype}`);
    const dtype = e.dtype as SafetensorsDType;
    const [begin, end] = e.data_offsets;
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * BYTES[dtype]) {
      throw new FormatError(`${source}: tensor ${name} spans ${end - begin} bytes, shape [${e.shape.join(', ')}] needs ${count * BYTES[dtype]}`);
    }
    if (dataStart + end > bytes.length) {
      throw new FormatError(`${source}: tensor ${name} ends at byte ${dataStart + end}, past the end of the file (${bytes.length} bytes); truncated?`);
    }
    // Copy into a fresh buffer: the data may not be aligned, and a Node Buffer's slice is a view.
    const raw = new Uint8Array(end - begin);
    raw.set(bytes.subarray(dataStart + begin, dataStart + end));
    const data = dtype === 'F32' ? new Float32Array(raw.buffer) : dtype === 'I32' ? new Int32Array(raw.buffer) : new Uint16Array(raw.buffer);
    tensors[name] = { dtype, shape: e.shape, data };
  }
  return { tensors, metadata };
}
