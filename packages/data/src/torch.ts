/**
 * PyTorch state_dicts saved by `torch.save(net.state_dict(), file)`: a zip holding `<root>/data.pkl`
 * (a pickle) and the raw storages under `<root>/data/<key>` (`<root>` is the file's base name in
 * PyTorch 1.x, `archive` later; `<root>/byteorder` may say big-endian). The pickle is read by the
 * same strict machine as the verification sets (see pickle.ts): it builds plain values only and
 * knows exactly the globals a state_dict names (`collections.OrderedDict`,
 * `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter`, `torch.FloatStorage`,
 * `torch.HalfStorage`, `torch.LongStorage`); any other global, any other opcode, is a FormatError
 * naming the file. Nothing is ever executed.
 */
import { FormatError, float16ToFloat32Array } from '@fr/core';
import { opName } from './pickle.js';
import { readZip, type ZipOptions } from './zip.js';

export type TorchDType = 'float32' | 'float16' | 'int64';

/** One tensor of a state_dict, made contiguous. float16 values are widened to float32. */
export interface TorchTensor {
  /** The storage type the file holds. */
  dtype: TorchDType;
  shape: number[];
  data: Float32Array | BigInt64Array;
}

const STORAGES: Record<string, { dtype: TorchDType; bytes: number }> = {
  'torch.FloatStorage': { dtype: 'float32', bytes: 4 },
  'torch.HalfStorage': { dtype: 'float16', bytes: 2 },
  'torch.LongStorage': { dtype: 'int64', bytes: 8 },
};
const ORDERED_DICT = 'collections.OrderedDict';
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const REBUILD_PARAMETER = 'torch._utils._rebuild_parameter';
const GLOBALS = new Set([ORDERED_DICT, REBUILD_TENSOR, REBUILD_PARAMETER, ...Object.keys(STORAGES)]);

const MARK = Symbol('mark');
class Global { constructor(readonly name: string) {} }
class Dict { readonly items = new Map<Value, Value>(); }
class StorageRef { constructor(readonly type: string, readonly key: string, readonly numel: number) {} }
class TensorRef { constructor(readonly storage: StorageRef, readonly offset: number, readonly shape: number[], readonly stride: number[]) {} }
type Value = null | boolean | number | string | Value[] | { tuple: Value[] } | Dict | Global | StorageRef | TensorRef | typeof MARK;

const isTuple = (v: Value): v is { tuple: Value[] } => typeof v === 'object' && v !== null && 'tuple' in v;
const isInt = (v: Value): v is number => typeof v === 'number' && Number.isInteger(v);

/** Runs the state_dict pickle; returns name -> tensor reference, in file order. */
function unpickleStateDict(bytes: Uint8Array, file: string): Map<string, TensorRef> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Value[] = [];
  const memo = new Map<number, Value>();
  let pos = 0, opAt = 0, op = 0;
  const fail = (why: string): never => {
    throw new FormatError(`${file}: ${why} at byte ${opAt} of data.pkl (opcode ${opName(op)})`);
  };
  const need = (n: number) => { if (pos + n > bytes.length) fail(`truncated: ${n} bytes needed, ${bytes.length - pos} left`); };
  const u8 = () => { need(1); return bytes[pos++]; };
  const u16 = () => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = () => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = () => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const take = (n: number) => { need(n); const v = bytes.subarray(pos, pos + n); pos += n; return v; };
  const text = (n: number) => new TextDecoder().decode(take(n));
  const pop = (): Value => (stack.length ? stack.pop()! : fail('stack underflow'));
  const top = (): Value => (stack.length ? stack[stack.length - 1] : fail('empty stack'));
  const popMark = (): Value[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('no MARK on the stack');
    return stack.splice(i).slice(1);
  };
  const setItems = (items: Value[]) => {
    const d = top();
    if (!(d instanceof Dict)) fail('SETITEM(S) target is not a dict');
    for (let i = 0; i + 1 < items.length; i += 2) (d as Dict).items.set(items[i], items[i + 1]);
  };
  const global = (name: string) => {
    if (!GLOBALS.has(name)) fail(`refusing to load global ${name} (a state_dict names only ${[...GLOBALS].join(', ')}; save net.state_dict(), not the network)`);
    stack.push(new Global(name));
  };
  const reduce = (fn: Value, args: Value): Value => {
    if (!(fn instanceof Global) || !isTuple(args)) return fail('REDUCE of something that is not an allowed global');
    const a = args.tuple;
    switch (fn.name) {
      case ORDERED_DICT:
        if (a.length !== 0) fail('OrderedDict with arguments');
        return new Dict();
      case REBUILD_TENSOR: {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        const [storage, offset, size, stride] = a;
        if (!(storage instanceof StorageRef) || !isInt(offset) || !isTuple(size) || !isTuple(stride)
          || !size.tuple.every(isInt) || !stride.tuple.every(isInt) || size.tuple.length !== stride.tuple.length) {
          fail('_rebuild_tensor_v2 with arguments other than (storage, offset, size, stride, ...)');
        }
        return new TensorRef(storage as StorageRef, offset as number, (size as { tuple: number[] }).tuple, (stride as { tuple: number[] }).tuple);
      }
      case REBUILD_PARAMETER:
        if (!(a[0] instanceof TensorRef)) fail('_rebuild_parameter of something that is not a tensor');
        return a[0];
      default:
        return fail(`REDUCE of ${fn.name}`);
    }
  };

  for (;;) {
    opAt = pos;
    if (pos >= bytes.length) { op = -1; fail('truncated before STOP'); }
    op = bytes[pos++];
    switch (op) {
      case 0x80: { const p = u8(); if (p < 2 || p > 5) fail(`pickle protocol ${p} is not 2..5`); break; }
      case 0x95: take(8); break; // FRAME: a length hint only
      case 0x7d: stack.push(new Dict()); break;
      case 0x5d: stack.push([]); break;
      case 0x29: stack.push({ tuple: [] }); break;
      case 0x28: stack.push(MARK); break;
      case 0x4e: stack.push(null); break;
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x4b: stack.push(u8()); break;
      case 0x4d: stack.push(u16()); break;
      case 0x4a: stack.push(i32()); break;
      case 0x8a: { // LONG1: a little-endian two's complement integer of n bytes
        const n = u8();
        if (n > 7) fail(`LONG1 of ${n} bytes`);
        const b = take(n);
        let v = 0;
        for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i];
        if (n > 0 && b[n - 1] & 0x80) v -= 2 ** (8 * n);
        stack.push(v);
        break;
      }
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; }
      case 0x58: stack.push(text(u32())); break;
      case 0x8c: stack.push(text(u8())); break;
      case 0x85: stack.push({ tuple: [pop()] }); break;
      case 0x86: { const b = pop(), a = pop(); stack.push({ tuple: [a, b] }); break; }
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push({ tuple: [a, b, c] }); break; }
      case 0x74: stack.push({ tuple: popMark() }); break;
      case 0x61: { const v = pop(), l = top(); if (!Array.isArray(l)) fail('APPEND target is not a list'); (l as Value[]).push(v); break; }
      case 0x65: { const items = popMark(), l = top(); if (!Array.isArray(l)) fail('APPENDS target is not a list'); (l as Value[]).push(...items); break; }
      case 0x73: { const v = pop(), k = pop(); setItems([k, v]); break; }
      case 0x75: setItems(popMark()); break;
      case 0x94: memo.set(memo.size, top()); break;
      case 0x71: memo.set(u8(), top()); break;
      case 0x72: memo.set(u32(), top()); break;
      case 0x68: case 0x6a: {
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} was never stored`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const end1 = bytes.indexOf(0x0a, pos), end2 = end1 < 0 ? -1 : bytes.indexOf(0x0a, end1 + 1);
        if (end2 < 0) fail('unterminated GLOBAL');
        const name = `${text(end1 - pos)}.${(take(1), text(end2 - end1 - 1))}`;
        take(1);
        global(name);
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const n = pop(), m = pop();
        if (typeof m !== 'string' || typeof n !== 'string') return fail('STACK_GLOBAL of non-strings');
        global(`${m}.${n}`);
        break;
      }
      case 0x52: { const args = pop(), fn = pop(); stack.push(reduce(fn, args)); break; }
      case 0x62: { // BUILD: only an OrderedDict's attribute dict (`_metadata`), which is dropped
        const state = pop();
        if (!(top() instanceof Dict) || !(state instanceof Dict)) fail('BUILD of anything but a dict with a dict state');
        break;
      }
      case 0x51: { // BINPERSID: ('storage', <storage type>, key, location, numel)
        const pid = pop();
        const t = isTuple(pid) ? pid.tuple : [];
        if (t.length !== 5 || t[0] !== 'storage' || !(t[1] instanceof Global) || !STORAGES[t[1].name] || typeof t[2] !== 'string' || !isInt(t[4])) {
          fail('a persistent id that is not (storage, torch.*Storage, key, location, numel)');
        }
        stack.push(new StorageRef((t[1] as Global).name, t[2] as string, t[4] as number));
        break;
      }
      case 0x2e: {
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        const root = stack[0];
        if (!(root instanceof Dict)) return fail('the pickle is not a dict (a state_dict)');
        const out = new Map<string, TensorRef>();
        for (const [k, v] of (root as Dict).items) {
          if (typeof k !== 'string') fail('a state_dict key is not a string');
          if (!(v instanceof TensorRef)) fail(`state_dict entry ${k as string} is not a tensor`);
          out.set(k as string, v as TensorRef);
        }
        return out;
      }
      default:
        fail('unsupported opcode');
    }
  }
}

/** Reads a state_dict saved by torch.save; `module.` prefixes (DataParallel) are stripped. */
export function readTorchStateDict(bytes: Uint8Array, file: string, options: ZipOptions = {}): Map<string, TorchTensor> {
  const entries = readZip(bytes, file, options);
  const pickles = entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pickles.length !== 1) {
    throw new FormatError(`${file}: expected one <root>/data.pkl in the archive (torch.save's zip format), found ${pickles.length}`);
  }
  const root = pickles[0].name.slice(0, -'/data.pkl'.length);
  const byName = new Map(entries.map((e) => [e.name, e.data]));
  const order = byName.get(`${root}/byteorder`);
  const orderText = order ? new TextDecoder().decode(order).trim() : 'little';
  if (orderText !== 'little' && orderText !== 'big') throw new FormatError(`${file}: byteorder ${JSON.stringify(orderText)} is neither little nor big`);
  const little = orderText === 'little';
  const refs = unpickleStateDict(pickles[0].data, file);
  const out = new Map<string, TorchTensor>();
  const stripPrefix = [...refs.keys()].every((k) => k.startsWith('module.'));
  for (const [key, ref] of refs) {
    const name = stripPrefix ? key.slice('module.'.length) : key;
    const { dtype, bytes: width } = STORAGES[ref.storage.type];
    const raw = byName.get(`${root}/data/${ref.storage.key}`);
    if (!raw) throw new FormatError(`${file}: ${name} reads storage ${ref.storage.key}, which the archive lacks (${root}/data/${ref.storage.key})`);
    if (raw.length !== ref.storage.numel * width) {
      throw new FormatError(`${file}: storage ${ref.storage.key} of ${name} holds ${raw.length} bytes, not ${ref.storage.numel} ${dtype} values`);
    }
    out.set(name, gather(name, ref, raw, dtype, width, little, file));
  }
  return out;
}

const HOST_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Copies a strided view of a storage into a contiguous tensor. */
function gather(name: string, ref: TensorRef, raw: Uint8Array, dtype: TorchDType, width: number, little: boolean, file: string): TorchTensor {
  const { shape, stride, offset } = ref;
  const count = shape.reduce((a, b) => a * b, 1);
  let last = offset;
  for (let d = 0; d < shape.length; d++) if (shape[d] > 0) last += (shape[d] - 1) * stride[d];
  if (count > 0 && (offset < 0 || stride.some((s) => s < 0) || last >= ref.storage.numel)) {
    throw new FormatError(`${file}: ${name} (shape [${shape.join(', ')}], stride [${stride.join(', ')}], offset ${offset}) reads outside its storage of ${ref.storage.numel} values`);
  }
  // The common case, a contiguous little-endian tensor: one copy of its bytes.
  let contiguous = true;
  for (let d = shape.length - 1, step = 1; d >= 0; step *= shape[d], d--) if (shape[d] !== 1 && stride[d] !== step) contiguous = false;
  if (contiguous && little && HOST_LITTLE_ENDIAN) {
    // A copy through Uint8Array's slice: a Node Buffer's own slice is a view of the whole file.
    const bytes = Uint8Array.prototype.slice.call(raw, offset * width, (offset + count) * width).buffer;
    const data = dtype === 'int64' ? new BigInt64Array(bytes) : dtype === 'float32' ? new Float32Array(bytes) : float16ToFloat32Array(new Uint16Array(bytes));
    return { dtype, shape: [...shape], data };
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const index = new Int32Array(shape.length);
  const data = dtype === 'int64' ? new BigInt64Array(count) : new Float32Array(count);
  const half = dtype === 'float16' ? new Uint16Array(count) : null;
  for (let i = 0; i < count; i++) {
    let at = offset;
    for (let d = 0; d < shape.length; d++) at += index[d] * stride[d];
    const b = at * width;
    if (dtype === 'int64') (data as BigInt64Array)[i] = view.getBigInt64(b, little);
    else if (half) half[i] = view.getUint16(b, little);
    else (data as Float32Array)[i] = view.getFloat32(b, little);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return { dtype, shape: [...shape], data: half ? float16ToFloat32Array(half) : data };
}
