/**
 * The gradient checker: compares the tape's gradients of `sum(fn(inputs) * r)` (r random) with
 * central finite differences. The backend computes in float32; the differences and sums are taken
 * in float64 on the host, so a step of ~1e-3 gives errors far below the tolerance.
 */
import type { Backend } from '../backend.js';
import { mul, sum } from '../ops.js';
import { createRng } from '../rng.js';
import { backward, noGrad } from '../tape.js';
import { tensor, tidy, type Tensor } from '../tensor.js';
import { centralDifferences, worstDisagreement, type GradDisagreement } from './central-differences.js';

export interface GradCheckInput {
  shape: number[];
  data: Float32Array;
}

export interface GradCheckOptions {
  /** Finite-difference step. */
  eps?: number;
  rtol?: number;
  atol?: number;
  /** Check at most this many elements per input (chosen at random). */
  maxElements?: number;
  seed?: number;
}

export interface GradCheckResult {
  passed: boolean;
  /** Per input: worst absolute error, the allowed error, and where. */
  inputs: GradDisagreement[];
}

export async function gradCheck(
  backend: Backend,
  fn: (inputs: Tensor[]) => Tensor,
  inputs: readonly GradCheckInput[],
  options: GradCheckOptions = {},
): Promise<GradCheckResult> {
  const eps = options.eps ?? 1e-3;
  const rtol = options.rtol ?? 1e-2;
  const atol = options.atol ?? 1e-3;
  const rng = createRng(options.seed ?? 7);

  const evaluate = async (datas: Float32Array[], weights: Float32Array): Promise<number> => {
    const out = noGrad(() => tidy(() => fn(datas.map((d, i) => tensor(backend, d, inputs[i].shape)))));
    const values = await out.data();
    out.dispose();
    let s = 0;
    for (let i = 0; i < values.length; i++) s += values[i] * weights[i];
    return s;
  };

  // Analytic gradients through the tape.
  let weights!: Float32Array;
  const analytic: Float32Array[] = [];
  {
    const leaves = inputs.map((inp) => tensor(backend, inp.data, inp.shape, { requiresGrad: true }));
    tidy(() => {
      const out = fn(leaves);
      weights = new Float32Array(out.size);
      for (let i = 0; i < weights.length; i++) weights[i] = rng.normal();
      const loss = sum(mul(out, tensor(backend, weights, out.shape)));
      backward(loss);
    });
    for (const leaf of leaves) {
      analytic.push(leaf.grad ? ((await leaf.grad.data()) as Float32Array) : new Float32Array(leaf.size));
      leaf.dispose();
    }
  }

  const datas = inputs.map((i) => Float32Array.from(i.data));
  const result: GradCheckResult = { passed: true, inputs: [] };
  for (let k = 0; k < inputs.length; k++) {
    const n = inputs[k].data.length;
    let indices = [...Array(n).keys()];
    if (options.maxElements && n > options.maxElements) indices = rng.shuffle(indices).slice(0, options.maxElements);
    const numeric = await centralDifferences(datas[k], () => evaluate(datas, weights), eps, indices);
    const worst = worstDisagreement(analytic[k], numeric, { atol, rtol }, indices);
    if (!(worst.maxError <= worst.allowed)) result.passed = false;
    result.inputs.push(worst);
  }
  return result;
}
