/**
 * The layer golden runner the backends share: one fixture of test/fixtures/layers (float64
 * references of torch.nn.functional on float32 inputs) through the ops of @fr/core, so forward,
 * backward and the running-statistics update are all checked. Framework-free: it throws.
 */
import type { Backend } from '../backend.js';
import { batchNorm, conv2d } from '../layers.js';
import { l2normalize, linear, mul, prelu, sum } from '../ops.js';
import { backward } from '../tape.js';
import { tensor, tidy, type Tensor } from '../tensor.js';
import { expectClose, type Tolerance } from './tolerance.js';

type Values = { data: number[] } | number[];

/** One layer fixture as the golden files write it. */
export interface LayerGolden {
  op: string;
  attrs: Record<string, unknown>;
  inputs: Record<string, { shape: number[]; data: number[] }>;
  upstream: { shape: number[]; data: number[] };
  expected: { output: Values; grads: Record<string, Values>; runningMean?: Values; runningVar?: Values };
  tolerance: Tolerance;
}

const values = (v: Values): number[] => (Array.isArray(v) ? v : v.data);

function applyLayer(d: LayerGolden, t: Record<string, Tensor>): Tensor {
  const a = d.attrs as { stride?: number; padding?: number; groups?: number; training?: boolean; momentum?: number; eps?: number };
  switch (d.op) {
    case 'conv2d': return conv2d(t.x, t.weight, { stride: a.stride, padding: a.padding, groups: a.groups });
    case 'batchnorm':
      return batchNorm(t.x, { weight: t.weight, bias: t.bias, runningMean: t.runningMean, runningVar: t.runningVar }, {
        training: a.training ?? false, momentum: a.momentum, eps: a.eps,
      });
    case 'linear': return linear(t.x, t.weight, t.bias);
    case 'prelu': return prelu(t.x, t.weight);
    case 'l2normalize': return l2normalize(t.x);
    default: throw new Error(`${d.op}: unknown layer op in the golden fixture`);
  }
}

/**
 * Runs fixture `d` on `backend`: output, the gradient of every input under `upstream`, and the
 * running statistics where expected; throws naming `label` and the first quantity that is off.
 */
export async function checkLayerGolden(backend: Backend, d: LayerGolden, label: string): Promise<void> {
  const t: Record<string, Tensor> = {};
  for (const [name, v] of Object.entries(d.inputs)) {
    const stat = name === 'runningMean' || name === 'runningVar';
    t[name] = tensor(backend, v.data, v.shape, { requiresGrad: !stat, name });
  }
  const out = tidy(() => {
    const y = applyLayer(d, t);
    backward(sum(mul(y, tensor(backend, d.upstream.data, d.upstream.shape))));
    return y;
  });
  expectClose(await out.data(), values(d.expected.output), d.tolerance, `${label} output`);
  for (const [name, want] of Object.entries(d.expected.grads)) {
    const g = t[name]?.grad;
    if (!g) throw new Error(`${label}: no gradient of ${name}`);
    expectClose(await g.data(), values(want), d.tolerance, `${label} grad ${name}`);
  }
  if (d.expected.runningMean) expectClose(await t.runningMean.data(), values(d.expected.runningMean), d.tolerance, `${label} running mean`);
  if (d.expected.runningVar) expectClose(await t.runningVar.data(), values(d.expected.runningVar), d.tolerance, `${label} running var`);
  for (const v of [...Object.values(t), out]) v.dispose();
}
