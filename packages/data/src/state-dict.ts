/**
 * PyTorch state_dicts in and out of @fr modules. The backbones name their tensors as insightface's
 * networks do (`layer1.0.conv1.weight`, `features.running_var`), so a state_dict maps one to one:
 * reading checks that every name is there with its shape, and writing gives the safetensors file
 * that `net.load_state_dict(load_file(path), strict=True)` accepts, `num_batches_tracked`
 * (int64, which @fr does not track) included.
 */
import { DataError, FormatError, type Module, type NamedTensor } from '@fr/core';
import type { TorchTensor } from './torch.js';

const TRACKED = '.num_batches_tracked';
const LIST = 5;

function moduleTensors(module: Module): NamedTensor[] {
  return [...module.parameters, ...module.buffers];
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** The int64 counters of a state_dict that the module has no tensor for, by name. */
export type BatchCounters = Record<string, string>;

/**
 * Writes a state_dict into `module`'s tensors. Names must map one to one (the counters
 * `*.num_batches_tracked` excepted, which are returned); otherwise the DataError names `file` and
 * lists the first missing and unexpected names and every shape mismatch among the first ones.
 */
export function loadStateDict(module: Module, stateDict: ReadonlyMap<string, TorchTensor>, file: string, what = 'the backbone'): BatchCounters {
  const targets = moduleTensors(module);
  const wanted = new Map(targets.map((t) => [t.name, t.tensor]));
  const counters: BatchCounters = {};
  const missing = targets.filter((t) => !stateDict.has(t.name)).map((t) => t.name);
  const unexpected: string[] = [];
  const mismatched: string[] = [];
  for (const [name, t] of stateDict) {
    const target = wanted.get(name);
    if (!target) {
      if (name.endsWith(TRACKED) && t.dtype === 'int64' && t.data.length === 1) counters[name] = String((t.data as BigInt64Array)[0]);
      else unexpected.push(name);
      continue;
    }
    if (t.dtype === 'int64') mismatched.push(`${name} is int64 in the file, float32 in ${what}`);
    else if (shapeText(t.shape) !== shapeText(target.shape)) mismatched.push(`${name} is ${shapeText(t.shape)} in the file, ${shapeText(target.shape)} in ${what}`);
  }
  if (missing.length || unexpected.length || mismatched.length) {
    const parts: string[] = [];
    const first = (list: string[]) => `${list.slice(0, LIST).join(', ')}${list.length > LIST ? ', ...' : ''}`;
    if (missing.length) parts.push(`${missing.length} missing (${first(missing)})`);
    if (unexpected.length) parts.push(`${unexpected.length} unexpected (${first(unexpected)})`);
    if (mismatched.length) parts.push(`${mismatched.length} of another shape (${first(mismatched)})`);
    throw new DataError(`${file}: the state_dict does not match ${what} (${targets.length} tensors): ${parts.join('; ')}`);
  }
  for (const { name, tensor } of targets) tensor.backend.write(tensor.buffer(), stateDict.get(name)!.data as Float32Array);
  return counters;
}

/**
 * The module's state_dict as PyTorch names it, as a safetensors file: float32 parameters and
 * buffers, and an int64 scalar `<bn>.num_batches_tracked` beside every batch norm's running
 * statistics (from `counters` when given, else 0).
 */
export async function torchStateDictSafetensors(module: Module, counters: BatchCounters = {}, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const entries: { name: string; dtype: 'F32' | 'I64'; shape: number[]; bytes: Uint8Array }[] = [];
  for (const { name, tensor } of moduleTensors(module)) {
    const data = await tensor.data();
    if (!(data instanceof Float32Array)) throw new FormatError(`state_dict export: ${name} is not float32`);
    entries.push({ name, dtype: 'F32', shape: [...tensor.shape], bytes: littleEndian(data) });
    if (name.endsWith('.running_mean')) {
      const counter = `${name.slice(0, -'.running_mean'.length)}${TRACKED}`;
      const value = new BigInt64Array([BigInt(counters[counter] ?? '0')]);
      entries.push({ name: counter, dtype: 'I64', shape: [], bytes: littleEndian(value) });
    }
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.bytes.length] };
    offset += e.bytes.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let pos = 8 + head.length;
  for (const e of entries) { out.set(e.bytes, pos); pos += e.bytes.length; }
  return out;
}

/** The values' bytes in little-endian order, on any host. */
function littleEndian(data: Float32Array | BigInt64Array): Uint8Array {
  const out = new Uint8Array(data.length * data.BYTES_PER_ELEMENT);
  const view = new DataView(out.buffer);
  if (data instanceof Float32Array) data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  else data.forEach((v, i) => view.setBigInt64(i * 8, v, true));
  return out;
}
