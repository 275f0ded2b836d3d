/**
 * A backbone plugin's checkpoint round trip, for its own tests and for third-party backbones: what
 * one module saves, another built from a different seed loads back bit for bit.
 */
import type { Backbone } from '../backbone.js';
import type { Backend } from '../backend.js';
import { restoreCheckpoint, serializeCheckpoint } from '../checkpoint.js';
import { createRng } from '../rng.js';
import { noGrad } from '../tape.js';
import { tensor, type Tensor } from '../tensor.js';

export interface BackboneCheckpointOptions {
  backend: Backend;
  /** The backbone's options, parsed by its schema. */
  params: unknown;
  /** Samples of the training-mode forward that moves the running statistics (default 4). */
  batch?: number;
}

export interface BackboneCheckpointResult {
  /** The saved module's checkpoint, for checks that another architecture refuses it. */
  bytes: Uint8Array;
  /** Parameters and buffers (by name) that did not load back bit for bit; empty when all did. */
  mismatched: string[];
  /** Whether both modules give the same embeddings, bit for bit, in evaluation mode. */
  sameEmbeddings: boolean;
}

function randomInput(backend: Backend, shape: number[], seed: number): Tensor {
  const rng = createRng(seed);
  return tensor(backend, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform() * 2 - 1), shape);
}

const bits = (a: Float32Array | Int32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const sameBits = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Builds the backbone with seed 1, runs one training-mode forward (batch-norm running statistics
 * move), saves parameters and buffers, builds it again with seed 2 and restores the checkpoint into
 * it; then compares every tensor bit for bit, and the two modules' embeddings of another batch.
 */
export async function checkBackboneCheckpoint<P>(backbone: Backbone<P>, o: BackboneCheckpointOptions): Promise<BackboneCheckpointResult> {
  const params = backbone.params.parse(o.params);
  const input = backbone.inputShape(params);
  const a = backbone.build({ backend: o.backend, params, rng: createRng(1) });
  const b = backbone.build({ backend: o.backend, params, rng: createRng(2) });
  const xs = [randomInput(o.backend, [o.batch ?? 4, ...input], 9), randomInput(o.backend, [2, ...input], 6)];
  try {
    noGrad(() => a.forward(xs[0], { training: true, seed: 1 })).dispose();
    const saved = [...a.parameters, ...a.buffers];
    const bytes = await serializeCheckpoint({ tensors: saved, metadata: { backbone: backbone.name } });
    const loaded = [...b.parameters, ...b.buffers];
    restoreCheckpoint(bytes, loaded);
    const mismatched: string[] = [];
    for (let i = 0; i < saved.length; i++) {
      if (!sameBits(bits(await saved[i].tensor.data()), bits(await loaded[i].tensor.data()))) mismatched.push(saved[i].name);
    }
    const embed = async (m: typeof a) => {
      const y = noGrad(() => m.forward(xs[1], { training: false }));
      const data = await y.data();
      y.dispose();
      return bits(data);
    };
    return { bytes, mismatched, sameEmbeddings: sameBits(await embed(a), await embed(b)) };
  } finally {
    for (const t of xs) t.dispose();
    a.dispose();
    b.dispose();
  }
}
