/**
 * Writes state_dicts in torch.save's zip format, which `torch.load` reads: `<root>/data.pkl` (a
 * protocol-2 pickle as torch writes it: an OrderedDict of REDUCEs of _rebuild_tensor_v2 with a
 * BINPERSID storage id), `<root>/data/<key>` raw storages, `<root>/version`, optionally
 * `<root>/byteorder`. Views (offset, stride, shared storages), big-endian storages and
 * parameters cover what files in the wild hold, so the reader is tested on all of them.
 */
import { crc32 } from './zip.js';

export interface TorchFileTensor {
  name: string;
  dtype: 'float32' | 'float16' | 'int64';
  /** The whole storage's values (float16 given as raw bits). */
  storage: number[] | Float32Array | Uint16Array | BigInt64Array;
  shape: number[];
  /** Default: contiguous. */
  stride?: number[];
  offset?: number;
  /** Storage key; tensors that give the same key share one storage. Default: the index. */
  key?: string;
  /** Wrap in _rebuild_parameter, as a state_dict of nn.Parameters is after `torch.save(model)`. */
  parameter?: boolean;
}

export interface TorchFileOptions {
  root?: string;
  bigEndian?: boolean;
  /** Write the byteorder entry (torch >= 1.13 does). */
  byteorder?: boolean;
  /** Compresses the entries with raw deflate (torch never does; other zip tools may). */
  deflate?: (data: Uint8Array) => Uint8Array;
  /** Replace the pickle. */
  pickle?: Uint8Array;
}

const STORAGE: Record<TorchFileTensor['dtype'], string> = { float32: 'FloatStorage', float16: 'HalfStorage', int64: 'LongStorage' };
const enc = new TextEncoder();

/** A few pickle opcodes, written as CPython's protocol 2 writes them. */
export class PickleWriter {
  private out: number[] = [];
  op(...b: number[]): this { this.out.push(...b); return this; }
  global(module: string, name: string): this { return this.op(0x63, ...enc.encode(`${module}\n${name}\n`)); }
  str(s: string): this {
    const b = enc.encode(s);
    return this.op(0x58, b.length & 255, (b.length >> 8) & 255, 0, 0, ...b);
  }
  int(v: number): this {
    if (v < 256) return this.op(0x4b, v);
    return this.op(0x4a, v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255);
  }
  tuple(items: number[]): this { this.op(0x28); for (const v of items) this.int(v); return this.op(0x74); }
  emptyOrderedDict(): this { return this.global('collections', 'OrderedDict').op(0x29, 0x52); }
  bytes(): Uint8Array { return Uint8Array.from(this.out); }
}

function contiguous(shape: number[]): number[] {
  const s = shape.map(() => 1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1] * shape[d + 1];
  return s;
}

/** The data.pkl of a state_dict of these tensors. */
export function statePickle(tensors: readonly TorchFileTensor[]): Uint8Array {
  const w = new PickleWriter().op(0x80, 2).emptyOrderedDict().op(0x28);
  tensors.forEach((t, i) => {
    w.str(t.name);
    if (t.parameter) w.global('torch._utils', '_rebuild_parameter').op(0x28);
    w.global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    w.op(0x28).str('storage').global('torch', STORAGE[t.dtype]).str(t.key ?? String(i)).str('cpu').int(t.storage.length).op(0x74, 0x51);
    w.int(t.offset ?? 0).tuple(t.shape).tuple(t.stride ?? contiguous(t.shape)).op(0x89).emptyOrderedDict().op(0x74, 0x52);
    if (t.parameter) w.op(0x89).emptyOrderedDict().op(0x74, 0x52);
  });
  w.op(0x75);
  // state_dict()'s `_metadata` attribute, set by BUILD.
  w.op(0x7d).str('_metadata').emptyOrderedDict().op(0x73, 0x62);
  return w.op(0x2e).bytes();
}

function storageBytes(t: TorchFileTensor, bigEndian: boolean): Uint8Array {
  const width = t.dtype === 'float32' ? 4 : t.dtype === 'float16' ? 2 : 8;
  const out = new Uint8Array(t.storage.length * width);
  const view = new DataView(out.buffer);
  const little = !bigEndian;
  for (let i = 0; i < t.storage.length; i++) {
    const v = t.storage[i];
    if (t.dtype === 'float32') view.setFloat32(i * 4, Number(v), little);
    else if (t.dtype === 'float16') view.setUint16(i * 2, Number(v), little);
    else view.setBigInt64(i * 8, BigInt(v), little);
  }
  return out;
}

/** A zip of stored (or deflated) entries, with the central directory and end record. */
export function writeZip(entries: readonly { name: string; data: Uint8Array }[], deflate?: (data: Uint8Array) => Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const body = deflate ? deflate(e.data) : e.data;
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(8, deflate ? 8 : 0, true);
    lv.setUint32(14, crc32(e.data), true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, e.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const dir = new Uint8Array(46 + name.length);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, 0x02014b50, true);
    dv.setUint16(10, deflate ? 8 : 0, true);
    dv.setUint32(16, crc32(e.data), true);
    dv.setUint32(20, body.length, true);
    dv.setUint32(24, e.data.length, true);
    dv.setUint16(28, name.length, true);
    dv.setUint32(42, offset, true);
    dir.set(name, 46);
    parts.push(local, body);
    central.push(dir);
    offset += local.length + body.length;
  }
  const dirSize = central.reduce((n, c) => n + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, dirSize, true);
  ev.setUint32(16, offset, true);
  const all = [...parts, ...central, end];
  const out = new Uint8Array(all.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of all) { out.set(p, o); o += p.length; }
  return out;
}

/** A torch.save file of these tensors (root `archive`, as PyTorch 2 names it, by default). */
export function writeTorchFile(tensors: readonly TorchFileTensor[], o: TorchFileOptions = {}): Uint8Array {
  const root = o.root ?? 'archive';
  const entries = [{ name: `${root}/data.pkl`, data: o.pickle ?? statePickle(tensors) }];
  const written = new Set<string>();
  tensors.forEach((t, i) => {
    const key = t.key ?? String(i);
    if (written.has(key)) return;
    written.add(key);
    entries.push({ name: `${root}/data/${key}`, data: storageBytes(t, o.bigEndian ?? false) });
  });
  if (o.byteorder ?? o.bigEndian) entries.push({ name: `${root}/byteorder`, data: enc.encode(o.bigEndian ? 'big' : 'little') });
  entries.push({ name: `${root}/version`, data: enc.encode('3\n') });
  return writeZip(entries, o.deflate);
}
