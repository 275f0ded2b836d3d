/**
 * Checkpoints: named tensors of a model, its loss head and its optimizer, with the step and the
 * config as metadata, in safetensors form. Loading checks names and shapes and names the first
 * mismatch instead of loading a wrong model.
 */
import type { NamedTensor } from './loss.js';
import { FormatError } from './errors.js';
import { float16ToFloat32Array } from './half.js';
import { decodeSafetensors, encodeSafetensors, type SafetensorsEntry } from './safetensors.js';

export interface CheckpointContents {
  /** Every tensor to save, by unique name. */
  tensors: readonly NamedTensor[];
  /** String metadata (step, config JSON, RNG state). */
  metadata: Record<string, string>;
}

/** Reads every tensor back and encodes the checkpoint. */
export async function serializeCheckpoint(c: CheckpointContents): Promise<Uint8Array> {
  const entries: Record<string, SafetensorsEntry> = {};
  for (const { name, tensor } of c.tensors) {
    if (entries[name]) throw new FormatError(`checkpoint: two tensors are named ${name}`);
    const data = await tensor.data();
    entries[name] = { dtype: tensor.dtype === 'int32' ? 'I32' : 'F32', shape: [...tensor.shape], data };
  }
  return encodeSafetensors(entries, c.metadata);
}

/**
 * Writes saved values into existing tensors. Every tensor must be present with the same shape;
 * the error names the first that is not. Extra tensors in the file are refused too, unless
 * `allowExtra` (loading a backbone out of a full training checkpoint). Tensors named in `optional`
 * may be missing from the file; they keep their values.
 */
export function restoreCheckpoint(bytes: Uint8Array, into: readonly NamedTensor[],
  options: { source?: string; allowExtra?: boolean; optional?: readonly string[] } = {}): Record<string, string> {
  const source = options.source ?? 'checkpoint';
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  // Tensors that may be absent keep their values (optimizer state, for a shipped model).
  const optional = new Set(options.optional ?? []);
  into = into.filter((t) => tensors[t.name] || !optional.has(t.name));
  for (const { name, tensor } of into) {
    const saved = tensors[name];
    if (!saved) throw new FormatError(`${source}: tensor ${name} is missing (this model needs [${tensor.shape.join(', ')}])`);
    const same = saved.shape.length === tensor.shape.length && saved.shape.every((d, i) => d === tensor.shape[i]);
    if (!same) {
      throw new FormatError(`${source}: tensor ${name} has shape [${saved.shape.join(', ')}], this model needs [${tensor.shape.join(', ')}]`);
    }
  }
  if (!options.allowExtra) {
    const wanted = new Set([...into.map((t) => t.name), ...optional]);
    const extra = Object.keys(tensors).find((n) => !wanted.has(n));
    if (extra) throw new FormatError(`${source}: tensor ${extra} is not part of this model (another architecture?)`);
  }
  for (const { name, tensor } of into) {
    const saved = tensors[name];
    // A value's bits are read as the tensor's dtype: an I32 file tensor in a float32 weight would be garbage.
    if (tensor.dtype === 'int32' && saved.dtype !== 'I32') {
      throw new FormatError(`${source}: tensor ${name} is ${saved.dtype}, this model keeps it as I32 (integers)`);
    }
    if (tensor.dtype !== 'int32' && saved.dtype === 'I32') {
      throw new FormatError(`${source}: tensor ${name} is I32 (integers), this model needs floating point (F32, or F16 converted on load)`);
    }
    // float16 is widened to float32 exactly; every float16 value is a float32 value.
    const data = saved.data instanceof Uint16Array ? float16ToFloat32Array(saved.data) : saved.data;
    tensor.backend.write(tensor.buffer(), data);
  }
  return metadata;
}
