/**
 * A strict protobuf reader for the part of onnx.proto an inference graph uses (ModelProto,
 * GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto). Fields it does not need are
 * skipped by wire type; a length or varint running past its message is a FormatError naming the
 * file (a truncated download). Tensors stored outside the file (external data) are refused.
 */
import { FormatError } from '@fr/core';

export interface OnnxTensor {
  name: string;
  dims: number[];
  /** float32 data (FLOAT, FLOAT16 and DOUBLE widened or narrowed) or integers (INT64, INT32). */
  data: Float32Array | number[];
  kind: 'float' | 'int';
}

export type OnnxAttribute = { name: string; f?: number; i?: number; s?: string; t?: OnnxTensor; floats?: number[]; ints?: number[] };

export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

export interface OnnxValueInfo {
  name: string;
  /** Known dimensions as numbers, symbolic ones as their names (or '?'). */
  dims: (number | string)[];
}

export interface OnnxModel {
  irVersion: number;
  /** Opset of the default domain ('' or 'ai.onnx'). */
  opset: number;
  producer: string;
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  docString: string;
}

/** Field-by-field reader of one message. */
class Reader {
  pos: number;
  constructor(readonly bytes: Uint8Array, readonly file: string, start: number, readonly end: number) {
    this.pos = start;
  }

  fail(why: string): never {
    throw new FormatError(`${this.file}: not a readable ONNX model: ${why} at byte ${this.pos} (truncated or damaged?)`);
  }

  varint(): number {
    let v = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('a varint runs past its message');
      const b = this.bytes[this.pos++];
      if (i < 8) v += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) {
        // Negative int64 values are 10-byte two's complement: fold them back.
        return i === 9 ? v - 2 ** 64 : v;
      }
    }
    return this.fail('a varint longer than 10 bytes');
  }

  /** Each field of the message: its number, wire type and a reader over its payload. */
  *fields(): Generator<{ field: number; wire: number; sub: Reader; value: number }> {
    while (this.pos < this.end) {
      const key = this.varint();
      const field = Math.floor(key / 8), wire = key % 8;
      if (wire === 0) yield { field, wire, sub: this, value: this.varint() };
      else if (wire === 2) {
        const n = this.varint();
        if (this.pos + n > this.end) this.fail(`field ${field}: ${n} bytes run past its message`);
        const sub = new Reader(this.bytes, this.file, this.pos, this.pos + n);
        this.pos += n;
        yield { field, wire, sub, value: n };
      } else if (wire === 5 || wire === 1) {
        const n = wire === 5 ? 4 : 8;
        if (this.pos + n > this.end) this.fail(`field ${field}: a fixed value runs past its message`);
        const sub = new Reader(this.bytes, this.file, this.pos, this.pos + n);
        this.pos += n;
        yield { field, wire, sub, value: 0 };
      } else this.fail(`wire type ${wire} of field ${field}`);
    }
  }

  text(): string {
    return new TextDecoder().decode(this.bytes.subarray(this.pos, this.end));
  }

  float32(): number {
    return new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 4).getFloat32(0, true);
  }

  /** A repeated varint field, packed or not. */
  varints(into: number[], wire: number, value: number): void {
    if (wire === 0) { into.push(value); return; }
    while (this.pos < this.end) into.push(this.varint());
  }

  floats(into: number[], wire: number): void {
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset);
    if (wire === 5) { into.push(view.getFloat32(this.pos, true)); return; }
    for (let p = this.pos; p + 4 <= this.end; p += 4) into.push(view.getFloat32(p, true));
  }
}

const FLOAT = 1, INT32 = 6, INT64 = 7, FLOAT16 = 10, DOUBLE = 11;

function tensorOf(r: Reader): OnnxTensor {
  const dims: number[] = [];
  let type = 0, name = '', raw: Uint8Array | null = null, external = false;
  const floats: number[] = [], ints: number[] = [], doubles: number[] = [];
  for (const { field, wire, sub, value } of r.fields()) {
    if (field === 1) sub.varints(dims, wire, value);
    else if (field === 2) type = value;
    else if (field === 4) sub.floats(floats, wire);
    else if (field === 5 || field === 7) sub.varints(ints, wire, value);
    else if (field === 8) name = sub.text();
    else if (field === 9) raw = sub.bytes.subarray(sub.pos, sub.end);
    else if (field === 10) {
      const view = new DataView(sub.bytes.buffer, sub.bytes.byteOffset);
      for (let p = sub.pos; p + 8 <= sub.end; p += 8) doubles.push(view.getFloat64(p, true));
    } else if (field === 14 && value === 1) external = true;
  }
  if (external) r.fail(`tensor ${name} keeps its data in an external file, which is not read`);
  const count = dims.reduce((a, b) => a * b, 1);
  const kind = type === INT64 || type === INT32 ? 'int' : 'float';
  if (![FLOAT, INT32, INT64, FLOAT16, DOUBLE].includes(type)) r.fail(`tensor ${name} has data type ${type} (float, float16, double, int32 and int64 are read)`);
  let data: Float32Array | number[];
  if (raw) {
    const b = raw as Uint8Array;
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const width = { [FLOAT]: 4, [INT32]: 4, [INT64]: 8, [FLOAT16]: 2, [DOUBLE]: 8 }[type]!;
    if (b.length !== count * width) r.fail(`tensor ${name} has ${b.length} bytes of raw data for ${count} values`);
    if (kind === 'int') {
      data = Array.from({ length: count }, (_, i) => (type === INT64 ? Number(view.getBigInt64(i * 8, true)) : view.getInt32(i * 4, true)));
    } else {
      data = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        data[i] = type === FLOAT ? view.getFloat32(i * 4, true) : type === DOUBLE ? view.getFloat64(i * 8, true) : half(view.getUint16(i * 2, true));
      }
    }
  } else if (kind === 'int') data = ints;
  else data = Float32Array.from(type === DOUBLE ? doubles : type === FLOAT16 ? ints.map(half) : floats);
  if (data.length !== count) r.fail(`tensor ${name} has ${data.length} values for dims [${dims.join(', ')}]`);
  return { name, dims, data, kind };
}

function half(bits: number): number {
  const e = (bits >> 10) & 0x1f, m = bits & 0x3ff, s = bits & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function attributeOf(r: Reader): OnnxAttribute {
  const a: OnnxAttribute = { name: '' };
  for (const { field, wire, sub, value } of r.fields()) {
    if (field === 1) a.name = sub.text();
    else if (field === 2) a.f = sub.float32();
    else if (field === 3) a.i = value > 2 ** 63 ? value - 2 ** 64 : value;
    else if (field === 4) a.s = sub.text();
    else if (field === 5) a.t = tensorOf(sub);
    else if (field === 7) sub.floats((a.floats ??= []), wire);
    else if (field === 8) sub.varints((a.ints ??= []), wire, value);
  }
  return a;
}

function nodeOf(r: Reader): OnnxNode {
  const n: OnnxNode = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: new Map() };
  for (const { field, sub } of r.fields()) {
    if (field === 1) n.inputs.push(sub.text());
    else if (field === 2) n.outputs.push(sub.text());
    else if (field === 3) n.name = sub.text();
    else if (field === 4) n.opType = sub.text();
    else if (field === 5) { const a = attributeOf(sub); n.attributes.set(a.name, a); }
    else if (field === 7) n.domain = sub.text();
  }
  return n;
}

function valueInfoOf(r: Reader): OnnxValueInfo {
  const v: OnnxValueInfo = { name: '', dims: [] };
  for (const { field, sub } of r.fields()) {
    if (field === 1) v.name = sub.text();
    else if (field === 2) {
      for (const t of sub.fields()) {
        if (t.field !== 1) continue; // tensor_type
        for (const tt of t.sub.fields()) {
          if (tt.field !== 2) continue; // shape
          for (const d of tt.sub.fields()) {
            if (d.field !== 1) continue;
            let dim: number | string = '?';
            for (const x of d.sub.fields()) dim = x.field === 1 ? x.value : x.field === 2 ? x.sub.text() : dim;
            v.dims.push(dim);
          }
        }
      }
    }
  }
  return v;
}

/** Parses an ONNX ModelProto; `file` names it in errors. */
export function decodeOnnx(bytes: Uint8Array, file: string): OnnxModel {
  const m: OnnxModel = { irVersion: 0, opset: 0, producer: '', nodes: [], initializers: new Map(), inputs: [], outputs: [], docString: '' };
  let graphSeen = false;
  const root = new Reader(bytes, file, 0, bytes.length);
  for (const { field, sub, value } of root.fields()) {
    if (field === 1) m.irVersion = value;
    else if (field === 2) m.producer = sub.text();
    else if (field === 6) m.docString = sub.text();
    else if (field === 8) {
      let domain = '', version = 0;
      for (const o of sub.fields()) {
        if (o.field === 1) domain = o.sub.text();
        else if (o.field === 2) version = o.value;
      }
      if (domain === '' || domain === 'ai.onnx') m.opset = version;
    } else if (field === 7) {
      graphSeen = true;
      for (const g of sub.fields()) {
        if (g.field === 1) m.nodes.push(nodeOf(g.sub));
        else if (g.field === 5) { const t = tensorOf(g.sub); m.initializers.set(t.name, t); }
        else if (g.field === 11) m.inputs.push(valueInfoOf(g.sub));
        else if (g.field === 12) m.outputs.push(valueInfoOf(g.sub));
      }
    }
  }
  if (!graphSeen) throw new FormatError(`${file}: not an ONNX model: no graph (${bytes.length} bytes)`);
  if (!m.opset) throw new FormatError(`${file}: the model imports no default-domain opset`);
  return m;
}
