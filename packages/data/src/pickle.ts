/**
 * A strict reader of the verification sets of insightface (lfw.bin, cfp_fp.bin, agedb_30.bin):
 * a pickle of (list of image bytes, list of issame bools). insightface wrote them with
 * pickle.dump((bins, issame_list), f, protocol=pickle.HIGHEST_PROTOCOL): protocol 2 under
 * Python 2 (images as str: SHORT_BINSTRING / BINSTRING, hence `encoding='bytes'` when loading in
 * Python 3), protocol 4 or 5 under Python 3 (FRAME, SHORT_BINBYTES / BINBYTES / BINBYTES8,
 * MEMOIZE). Python 3 with protocol 2 writes bytes as _codecs.encode(str, 'latin1'); that one
 * GLOBAL/REDUCE form (and __builtin__.bytes() for b'') is recognised and no other. The reader builds no objects: any other opcode is
 * refused with a FormatError naming the file, the byte offset and the opcode.
 */
import { FormatError } from '@fr/core';

const MARK = Symbol('mark');
const CODECS_ENCODE = Symbol('_codecs.encode');
const BUILTIN_BYTES = Symbol('__builtin__.bytes');
type Value = Uint8Array | boolean | string | Value[] | { tuple: Value[] } | typeof MARK | typeof CODECS_ENCODE | typeof BUILTIN_BYTES;

const NAMES: Record<number, string> = {
  0x80: 'PROTO', 0x95: 'FRAME', 0x5d: 'EMPTY_LIST', 0x29: 'EMPTY_TUPLE', 0x28: 'MARK', 0x61: 'APPEND', 0x65: 'APPENDS',
  0x55: 'SHORT_BINSTRING', 0x54: 'BINSTRING', 0x43: 'SHORT_BINBYTES', 0x42: 'BINBYTES', 0x8e: 'BINBYTES8',
  0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x86: 'TUPLE2', 0x85: 'TUPLE1', 0x74: 'TUPLE', 0x94: 'MEMOIZE', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x68: 'BINGET', 0x6a: 'LONG_BINGET', 0x2e: 'STOP', 0x63: 'GLOBAL', 0x52: 'REDUCE',
  0x58: 'BINUNICODE', 0x8c: 'SHORT_BINUNICODE', 0x93: 'STACK_GLOBAL', 0x81: 'NEWOBJ', 0x62: 'BUILD', 0x69: 'INST',
  0x4b: 'BININT1', 0x4a: 'BININT', 0x4d: 'BININT2', 0x7d: 'EMPTY_DICT', 0x73: 'SETITEM', 0x75: 'SETITEMS', 0x4e: 'NONE',
  0x47: 'BINFLOAT', 0x8a: 'LONG1', 0x51: 'BINPERSID', 0x87: 'TUPLE3', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER', 0x6f: 'OBJ',
};

/** The name of a pickle opcode, for error messages. */
export function opName(op: number): string {
  return NAMES[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
}

export interface VerificationBin {
  /** Encoded images (JPEG or PNG); pair p is images 2p and 2p+1. */
  images: Uint8Array[];
  issame: boolean[];
}

/** Parses a verification .bin. `file` is only used in error messages. */
export function readVerificationBin(bytes: Uint8Array, file = '<bytes>'): VerificationBin {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: Value[] = [];
  const memo = new Map<number, Value>();
  let pos = 0;
  let opAt = 0;
  let op = 0;
  const fail = (why: string): never => {
    throw new FormatError(`${file}: ${why} at byte ${opAt} (opcode ${opName(op)})`);
  };
  const need = (n: number) => {
    if (n < 0 || pos + n > bytes.length) fail(`truncated: ${n} bytes needed, ${bytes.length - pos} left`);
  };
  const u8 = () => { need(1); return bytes[pos++]; };
  const u32 = () => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const u64 = () => {
    need(8);
    const lo = view.getUint32(pos, true), hi = view.getUint32(pos + 4, true);
    pos += 8;
    if (hi >= 0x200000) fail('length does not fit in 2^53');
    return hi * 4294967296 + lo;
  };
  const take = (n: number) => { need(n); const v = bytes.subarray(pos, pos + n); pos += n; return v; };
  const pop = (): Value => (stack.length ? stack.pop()! : fail('stack underflow'));
  const popMark = (): Value[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('no MARK on the stack');
    const items = stack.splice(i);
    items.shift();
    if (items.includes(MARK)) fail('nested MARK');
    return items;
  };
  const appendTo = (items: Value[]) => {
    const list = stack[stack.length - 1];
    if (!Array.isArray(list)) fail('APPEND target is not a list');
    (list as Value[]).push(...items);
  };
  const latin1 = (b: Uint8Array) => { let s = ''; for (const c of b) s += String.fromCharCode(c); return s; };

  for (;;) {
    opAt = pos;
    if (pos >= bytes.length) { op = -1; fail('truncated before STOP'); }
    op = bytes[pos++];
    switch (op) {
      case 0x80: { const p = u8(); if (p < 2 || p > 5) fail(`pickle protocol ${p} is not 2..5`); break; }
      case 0x95: u64(); break; // FRAME: a length hint only; framing never splits an opcode we read.
      case 0x5d: stack.push([]); break;
      case 0x29: stack.push({ tuple: [] }); break;
      case 0x28: stack.push(MARK); break;
      case 0x61: appendTo([pop()]); break;
      case 0x65: { const items = popMark(); appendTo(items); break; }
      case 0x55: case 0x43: stack.push(take(u8())); break;
      case 0x54: case 0x42: stack.push(take(u32())); break;
      case 0x8e: stack.push(take(u64())); break;
      case 0x8c: stack.push(new TextDecoder().decode(take(u8()))); break;
      case 0x58: stack.push(new TextDecoder().decode(take(u32()))); break;
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x85: stack.push({ tuple: [pop()] }); break;
      case 0x86: { const b = pop(), a = pop(); stack.push({ tuple: [a, b] }); break; }
      case 0x74: stack.push({ tuple: popMark() }); break;
      case 0x94: memo.set(memo.size, stack.length ? stack[stack.length - 1] : fail('MEMOIZE on an empty stack')); break;
      case 0x71: memo.set(u8(), stack.length ? stack[stack.length - 1] : fail('BINPUT on an empty stack')); break;
      case 0x72: memo.set(u32(), stack.length ? stack[stack.length - 1] : fail('LONG_BINPUT on an empty stack')); break;
      case 0x68: case 0x6a: {
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} was never stored`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n": only Python 3's protocol-2 forms of bytes.
        const end1 = bytes.indexOf(0x0a, pos), end2 = end1 < 0 ? -1 : bytes.indexOf(0x0a, end1 + 1);
        if (end2 < 0) fail('unterminated GLOBAL');
        const name = `${latin1(bytes.subarray(pos, end1))}.${latin1(bytes.subarray(end1 + 1, end2))}`;
        if (name !== '_codecs.encode' && name !== '__builtin__.bytes') fail(`refusing to load global ${name}`);
        pos = end2 + 1;
        stack.push(name === '_codecs.encode' ? CODECS_ENCODE : BUILTIN_BYTES);
        break;
      }
      case 0x52: { // REDUCE: only _codecs.encode(str, 'latin1') -> bytes.
        const args = pop(), fn = pop();
        const t = typeof args === 'object' && args !== null && 'tuple' in args ? args.tuple : null;
        // bytes() with no arguments: how Python 3's protocol 2 writes b''.
        if (fn === BUILTIN_BYTES && t && t.length === 0) { stack.push(new Uint8Array(0)); break; }
        if (fn !== CODECS_ENCODE || !t || t.length !== 2 || typeof t[0] !== 'string' || t[1] !== 'latin1') fail('REDUCE of anything but _codecs.encode(str, "latin1")');
        const s = t![0] as string;
        const out = new Uint8Array(s.length);
        for (let i = 0; i < s.length; i++) {
          const c = s.charCodeAt(i);
          if (c > 255) fail('_codecs.encode argument is not latin-1');
          out[i] = c;
        }
        stack.push(out);
        break;
      }
      case 0x2e: {
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return shape(stack[0], fail);
      }
      default:
        fail('unsupported opcode');
    }
  }
}

function shape(v: Value, fail: (why: string) => never): VerificationBin {
  const t = typeof v === 'object' && v !== null && 'tuple' in v ? v.tuple : null;
  if (!t || t.length !== 2 || !Array.isArray(t[0]) || !Array.isArray(t[1])) fail('the pickle is not a (list, list) tuple');
  const [bins, same] = t! as [Value[], Value[]];
  const images = bins.map((b, i) => (b instanceof Uint8Array ? b : fail(`image ${i} is not bytes`)));
  const issame = same.map((b, i) => (typeof b === 'boolean' ? b : fail(`issame ${i} is not a bool`)));
  if (images.length !== 2 * issame.length) fail(`${images.length} images do not make ${issame.length} pairs`);
  return { images, issame };
}

export type PickleStyle = 'py2' | 'py3-protocol2' | 'protocol4';

/**
 * Writes (images, issame) as a pickle in one of the three forms the field's files take, for
 * fixtures and for exporting verification sets: 'py2' (protocol 2, str images), 'py3-protocol2'
 * (protocol 2, _codecs.encode), 'protocol4' (frames, bytes, MEMOIZE). Appends are batched by
 * 1000 as CPython does.
 */
export function writeVerificationBin(images: readonly Uint8Array[], issame: readonly boolean[], style: PickleStyle = 'protocol4'): Uint8Array {
  const chunks: number[] = [];
  const parts: Uint8Array[] = [];
  const flush = () => { if (chunks.length) { parts.push(Uint8Array.from(chunks)); chunks.length = 0; } };
  const byte = (...b: number[]) => chunks.push(...b);
  const u32 = (v: number) => byte(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255);
  const raw = (b: Uint8Array) => { flush(); parts.push(b); };
  let memo = 0;
  let codecsKey = -1;
  const put = () => {
    if (style === 'protocol4') byte(0x94);
    else if (memo < 256) byte(0x71, memo);
    else { byte(0x72); u32(memo); }
    memo++;
  };
  const str = (s: string) => { // short ASCII strings only
    const b = new TextEncoder().encode(s);
    if (style === 'protocol4') byte(0x8c, b.length, ...b); else { byte(0x58); u32(b.length); byte(...b); }
    put();
  };
  const bytesOp = (b: Uint8Array) => {
    if (style === 'py3-protocol2') {
      // The global is written and memoised once, then fetched from the memo.
      if (codecsKey < 0) { byte(0x63, ...new TextEncoder().encode('_codecs\nencode\n')); codecsKey = memo; put(); }
      else if (codecsKey < 256) byte(0x68, codecsKey);
      else { byte(0x6a); u32(codecsKey); }
      // The str argument is the bytes as latin-1 code points, UTF-8 encoded.
      let s = '';
      for (const c of b) s += String.fromCharCode(c);
      const u = new TextEncoder().encode(s);
      byte(0x58); u32(u.length); raw(u); put();
      str('latin1');
      byte(0x86); put(); byte(0x52); put();
      return;
    }
    const small = b.length < 256;
    if (style === 'py2') { if (small) byte(0x55, b.length); else { byte(0x54); u32(b.length); } }
    else if (small) byte(0x43, b.length); else { byte(0x42); u32(b.length); }
    raw(b);
    put();
  };
  byte(0x80, style === 'protocol4' ? 4 : 2);
  // protocol4 wraps everything in frames; one frame with the total length is valid framing.
  const list = (items: readonly unknown[], emit: (x: never) => void) => {
    byte(0x5d); put();
    for (let i = 0; i < items.length; i += 1000) {
      const batch = items.slice(i, i + 1000);
      if (batch.length > 1) byte(0x28);
      for (const x of batch) emit(x as never);
      byte(batch.length > 1 ? 0x65 : 0x61);
    }
  };
  list(images, (b: Uint8Array) => bytesOp(b));
  list(issame, (s: boolean) => byte(s ? 0x88 : 0x89));
  byte(0x86); put(); byte(0x2e);
  flush();
  const body = concat(parts);
  if (style !== 'protocol4') return body;
  const head = new Uint8Array(11);
  head.set([0x80, 4, 0x95]);
  new DataView(head.buffer).setUint32(3, body.length - 2, true);
  return concat([head, body.subarray(2)]);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
