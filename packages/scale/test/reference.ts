/** The unsharded head of @fr/core, run through the tape, as the reference of the sharded head. */
import {
  backward,
  cosineMarginHead,
  createRng,
  tensor,
  tidy,
  type Backend,
  type CosineMarginHeadOptions,
} from '@fr/core';

export interface Reference {
  loss: number;
  embeddingGrad: Float32Array;
  weight: Float32Array;
  weightGrad: Float32Array;
  biasGrad: number | null;
}

export async function referenceStep(
  backend: Backend, seed: number, numClasses: number, embeddingDim: number,
  options: CosineMarginHeadOptions, embeddings: Float32Array, labels: Int32Array,
): Promise<Reference> {
  const head = cosineMarginHead(
    { backend, numClasses, embeddingDim, params: {}, rng: createRng(seed) },
    options,
  );
  const x = tensor(backend, embeddings, [labels.length, embeddingDim], { requiresGrad: true });
  const loss = tidy(() => {
    const l = head.forward(x, labels);
    backward(l);
    return l;
  });
  const [w, b] = head.parameters;
  const out: Reference = {
    loss: await loss.item(),
    embeddingGrad: (await x.grad!.data()) as Float32Array,
    weight: (await w.tensor.data()) as Float32Array,
    weightGrad: (await w.tensor.grad!.data()) as Float32Array,
    biasGrad: b ? await b.tensor.grad!.item() : null,
  };
  loss.dispose();
  x.dispose();
  head.dispose();
  return out;
}

/** max |a - b| / max(max |b|, tiny): one relative error for a whole array. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    mag = Math.max(mag, Math.abs(b[i]));
  }
  return diff / Math.max(mag, 1e-30);
}

export function randomEmbeddings(seed: number, rows: number, cols: number): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = rng.normal(0, 1);
  return out;
}
