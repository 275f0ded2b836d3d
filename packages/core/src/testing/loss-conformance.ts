/**
 * The loss conformance kit: runs a loss plugin on reference cases (the golden JSON format of
 * `golden/losses/*.json`) and reports, per case, the largest error of the loss and of each
 * gradient against the case's tolerance. Loss packages, third-party plugin authors and the
 * `fr conformance` command use it; it imports no loss package (the caller passes them).
 *
 * How a case's tensors reach a head (the head parameter convention):
 * - the first parameter whose name ends in `.weight` is the class weight matrix [C, D], or
 *   [C*K, D] with `shape.subcenters` K (class-major: row c*K + k is sub-center k of class c);
 *   heads that split it, such as MultiFace, still keep one such parameter;
 * - the first parameter whose name ends in `.bias` receives `inputs.bias` (C values for a
 *   per-class bias, 1 value for a shared scalar bias);
 * - `expected.gradWeights` / `expected.gradBias` are compared with the `.grad` of those tensors;
 * - `inputs.margins` go to the forward as `HeadInputs.margins`: the head must list `margins` in its
 *   `takes` (a head drawing random margins uses them instead of its draws);
 * - `expected.state` names buffers of the head (`LossHead.buffers`), compared after the step.
 * A case is strict: an unknown key anywhere in it is an error naming the key.
 */
import { centralDifferences, worstDisagreement, type GradDisagreement } from './central-differences.js';
import { compareTolerance, type ToleranceCheck } from './tolerance.js';
import { z } from 'zod';
import type { Backend } from '../backend.js';
import { ConfigError, FormatError, ShapeError } from '../errors.js';
import type { HeadInputs, Loss, LossHead, NamedTensor } from '../loss.js';
import { parseLossParams } from '../loss.js';
import { createRng } from '../rng.js';
import { backward } from '../tape.js';
import { tensor, tidy, type Tensor } from '../tensor.js';

const numbers = z.array(z.number());

/** zod schema of one reference case (see the golden README for the meaning of each field); unknown keys are errors. */
export const lossCaseSchema = z.strictObject({
  name: z.string().min(1).describe('case name, unique in a suite'),
  loss: z.string().min(1).describe('name of the loss plugin that must reproduce the case'),
  params: z.record(z.string(), z.unknown()).default({}).describe('parameters given to the loss schema'),
  source: z.string().optional().describe('the implementation the numbers come from'),
  notes: z.string().optional().describe('what the case exercises'),
  shape: z.strictObject({
    batch: z.number().int().positive(),
    dim: z.number().int().positive(),
    classes: z.number().int().positive(),
    subcenters: z.number().int().positive().optional().describe('K sub-centers per class: weights are (C*K) x D, class-major'),
  }),
  inputs: z.strictObject({
    embeddings: numbers.describe('B*D raw embeddings, row-major'),
    weights: numbers.describe('C*D (or C*K*D) class weights, row-major'),
    labels: z.array(z.number().int().nonnegative()).describe('B labels in [0, C)'),
    bias: numbers.optional().describe('C per-class biases or 1 shared bias'),
    margins: numbers.optional().describe('B per-row margins given to the head for this step (HeadInputs.margins)'),
  }),
  expected: z.strictObject({
    loss: z.number(),
    gradEmbeddings: numbers,
    gradWeights: numbers,
    gradBias: numbers.optional(),
    state: z.record(z.string().min(1), z.number()).optional().describe("the head's buffers after the step, by name (one value each)"),
  }),
  tolerance: z.strictObject({ rtol: z.number().nonnegative(), atol: z.number().nonnegative() }),
});

export type LossCase = z.infer<typeof lossCaseSchema>;

/**
 * Validates a parsed JSON value (or JSON text) as a reference case. A malformed case throws a
 * FormatError naming the origin and every bad field, e.g. `arcface-small.json: inputs.labels.3: ...`.
 */
export function parseLossCase(input: unknown, origin = 'loss case'): LossCase {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (e) {
      throw new FormatError(`${origin}: not valid JSON (${(e as Error).message})`);
    }
  }
  const r = lossCaseSchema.safeParse(value);
  if (!r.success) {
    const detail = r.error.issues.map((i) => `${i.path.join('.') || '(case)'}: ${i.message}`).join('; ');
    throw new FormatError(`${origin}: ${detail}`);
  }
  return r.data;
}

/** One compared quantity. */
export interface LossCaseResult {
  name: string;
  loss: string;
  pass: boolean;
  /** Present when the case could not run (unknown loss, shape mismatch, a thrown error). */
  error?: string;
  /** The loss value the plugin produced. */
  value?: number;
  checks: {
    loss?: ToleranceCheck;
    gradEmbeddings?: ToleranceCheck;
    gradWeights?: ToleranceCheck;
    gradBias?: ToleranceCheck;
    /** One per `expected.state` entry: the head buffer of that name after the step. */
    [state: `state.${string}`]: ToleranceCheck;
  };
}

export interface LossConformanceOptions {
  /** The plugins that may be named by the cases' `loss` field. */
  losses: readonly Loss<any>[];
  /** The backend the heads run on. */
  backend: Backend;
}

function findParam(head: LossHead, suffix: string): NamedTensor | undefined {
  return head.parameters.find((p) => p.name.endsWith(suffix));
}

function findLoss(losses: readonly Loss<any>[], name: string): Loss<any> {
  const loss = losses.find((l) => l.name === name);
  if (!loss) {
    const given = losses.map((l) => l.name).join(', ') || '(none)';
    throw new ConfigError(`no loss named "${name}" among the given losses: ${given}`);
  }
  return loss;
}

function checkLength(c: LossCase, what: string, values: readonly number[] | undefined, size: number): void {
  if (values && values.length !== size) {
    throw new ShapeError(`case ${c.name}: ${what} has ${values.length} values, shape ${JSON.stringify(c.shape)} needs ${size}`);
  }
}

/** Runs one case; throws on an unknown loss or a shape mismatch (runLossConformance catches). */
export async function runLossCase(c: LossCase, options: LossConformanceOptions): Promise<LossCaseResult> {
  const loss = findLoss(options.losses, c.loss);
  const { batch: B, dim: D, classes: C, subcenters: K = 1 } = c.shape;
  checkLength(c, 'inputs.embeddings', c.inputs.embeddings, B * D);
  checkLength(c, 'inputs.weights', c.inputs.weights, C * K * D);
  checkLength(c, 'inputs.labels', c.inputs.labels, B);
  checkLength(c, 'inputs.margins', c.inputs.margins, B);
  checkLength(c, 'expected.gradEmbeddings', c.expected.gradEmbeddings, B * D);
  checkLength(c, 'expected.gradWeights', c.expected.gradWeights, C * K * D);
  if (c.expected.gradBias && !c.inputs.bias) throw new ShapeError(`case ${c.name}: expected.gradBias without inputs.bias`);
  if (c.inputs.bias) checkLength(c, 'expected.gradBias', c.expected.gradBias, c.inputs.bias.length);
  const be = options.backend;
  const params = parseLossParams(loss, c.params);
  const head = loss.createHead({ backend: be, numClasses: C, embeddingDim: D, params, rng: createRng(1) });
  const x = tensor(be, Float32Array.from(c.inputs.embeddings), [B, D], { requiresGrad: true, name: 'embeddings' });
  try {
    const weight = findParam(head, '.weight');
    if (!weight) throw new ShapeError(`case ${c.name}: head of ${loss.name} has no parameter named *.weight (has ${head.parameters.map((p) => p.name).join(', ')})`);
    if (weight.tensor.rank !== 2 || weight.tensor.shape[0] !== C * K || weight.tensor.shape[1] !== D) {
      const rows = K > 1 ? `${C * K} (${C} classes x ${K} sub-centers)` : `${C}`;
      throw new ShapeError(`case ${c.name}: ${weight.name} ${weight.tensor.describe()} cannot take ${rows}x${D} class weights`);
    }
    const inputs: HeadInputs = {};
    if (c.inputs.margins) {
      if (!head.takes?.includes('margins')) throw new ShapeError(`case ${c.name}: the case has inputs.margins but the head of ${loss.name} takes no margins`);
      inputs.margins = Float32Array.from(c.inputs.margins);
    }
    const state = Object.keys(c.expected.state ?? {}).map((name) => {
      const buffer = head.buffers.find((b) => b.name === name);
      if (!buffer) throw new ShapeError(`case ${c.name}: expected.state names ${name}, but the head of ${loss.name} has no such buffer (has: ${head.buffers.map((b) => b.name).join(', ') || 'none'})`);
      if (buffer.tensor.size !== 1) throw new ShapeError(`case ${c.name}: expected.state.${name} is one value, buffer ${buffer.tensor.describe()} is not`);
      return buffer;
    });
    be.write(weight.tensor.buffer(), Float32Array.from(c.inputs.weights));
    const bias = findParam(head, '.bias');
    if (c.inputs.bias) {
      if (!bias) throw new ShapeError(`case ${c.name}: the case has inputs.bias but the head of ${loss.name} has no *.bias parameter`);
      if (bias.tensor.size !== c.inputs.bias.length) {
        throw new ShapeError(`case ${c.name}: ${bias.name} ${bias.tensor.describe()} cannot take ${c.inputs.bias.length} bias values`);
      }
      be.write(bias.tensor.buffer(), Float32Array.from(c.inputs.bias));
    }
    const labels = Int32Array.from(c.inputs.labels);
    // backward must run in the tidy that recorded the forward: intermediates die at its end.
    const out = tidy(() => {
      const l = head.forward(x, labels, inputs);
      backward(l);
      return l;
    });
    const value = await out.item();
    out.dispose();
    const tol = c.tolerance;
    const gradOf = async (t: Tensor | undefined, what: string): Promise<ArrayLike<number>> => {
      if (!t?.grad) throw new ShapeError(`case ${c.name}: no gradient reached ${what}`);
      return t.grad.data();
    };
    const checks: LossCaseResult['checks'] = {
      loss: compareTolerance([value], [c.expected.loss], tol),
      gradEmbeddings: compareTolerance(await gradOf(x, 'the embeddings'), c.expected.gradEmbeddings, tol),
      gradWeights: compareTolerance(await gradOf(weight.tensor, weight.name), c.expected.gradWeights, tol),
    };
    if (c.expected.gradBias) checks.gradBias = compareTolerance(await gradOf(bias?.tensor, 'the bias'), c.expected.gradBias, tol);
    for (const b of state) checks[`state.${b.name}`] = compareTolerance(await b.tensor.data(), [c.expected.state![b.name]], tol);
    const pass = Object.values(checks).every((k) => k.pass);
    return { name: c.name, loss: c.loss, pass, value, checks };
  } finally {
    x.dispose();
    head.dispose();
  }
}

/**
 * Runs every case and never throws for a single case: a case that cannot run is a failure whose
 * `error` says why. `cases` may be parsed cases or raw JSON values (validated here).
 */
export async function runLossConformance(cases: readonly (LossCase | unknown)[], options: LossConformanceOptions): Promise<LossCaseResult[]> {
  const results: LossCaseResult[] = [];
  for (let i = 0; i < cases.length; i++) {
    const raw = cases[i] as { name?: unknown; loss?: unknown } | null;
    const name = typeof raw?.name === 'string' ? raw.name : `case #${i}`;
    const lossName = typeof raw?.loss === 'string' ? raw.loss : '?';
    try {
      results.push(await runLossCase(parseLossCase(raw, name), options));
    } catch (e) {
      results.push({ name, loss: lossName, pass: false, error: `${(e as Error).name}: ${(e as Error).message}`, checks: {} });
    }
  }
  return results;
}

const fmt = (v: number) => (Number.isFinite(v) ? v.toExponential(2) : String(v));

/** One line per case (`PASS name (loss)  loss 1.2e-7 <= 3.4e-5 ...`) and a final `N passed, M failed`. */
export function formatLossConformance(results: readonly LossCaseResult[]): string {
  const lines = results.map((r) => {
    const head = `${r.pass ? 'PASS' : 'FAIL'} ${r.name} (${r.loss})`;
    if (r.error) return `${head}  ${r.error}`;
    const parts = Object.entries(r.checks).map(([k, c]) => `${k} ${fmt(c.maxError)} ${c.pass ? '<=' : '>'} ${fmt(c.limit)}`);
    return `${head}  ${parts.join('  ')}`;
  });
  const passed = results.filter((r) => r.pass).length;
  lines.push(`${passed} passed, ${results.length - passed} failed`);
  return lines.join('\n');
}

/**
 * The part of a test runner's API that `describeGoldenCases` uses; pass vitest's module
 * (`import * as vitest from 'vitest'`). Taking it as an argument keeps @fr/core free of a test
 * runner, so `fr conformance` can import this module outside of one.
 */
export interface GoldenTestApi {
  describe(name: string, fn: () => void): void;
  test(name: string, fn: () => Promise<void> | void): void;
  beforeAll(fn: () => Promise<void> | void): void;
  afterAll(fn: () => Promise<void> | void): void;
  expect(actual: unknown, message?: string): {
    toBe(expected: unknown): void;
    toBeUndefined(): void;
    toHaveLength(length: number): void;
  };
}

/** A backend the golden cases run on, created once per suite and disposed after it. */
export interface GoldenBackend {
  name: string;
  create(): Promise<Backend> | Backend;
}

export interface GoldenSuiteOptions {
  /** The package's reference cases (parsed). */
  cases: readonly LossCase[];
  /** How many cases the package ships: a lost fixture file fails the suite. */
  count: number;
  /** The plugins the cases may name. */
  losses: readonly Loss<any>[];
  backends: readonly GoldenBackend[];
  /** Print each case's report line (also when FR_SHOW is set in the environment). */
  show?: boolean;
  /**
   * Also hold each tensor's error within this fraction of its limit (atol + rtol max|want|), not
   * merely inside it: float32 done well lands at a few thousandths of the golden tolerance, and an
   * error near the limit means bits are lost somewhere (WGSL's built-in sin and cos once cost a third).
   */
  precision?: number;
}

/** `{ loss: 0.0001, gradEmbeddings: 0.0017, ... }`: each check's error over its limit. */
export function precisionRatios(r: LossCaseResult): Record<string, number> {
  return Object.fromEntries(Object.entries(r.checks).map(([k, c]) => [k, c.limit > 0 ? c.maxError / c.limit : c.maxError === 0 ? 0 : Infinity]));
}

/**
 * Declares, per backend, a suite `golden cases on <backend>`: one test that the expected number of
 * cases is present, then one test per case asserting it ran (no error) and passed every tolerance
 * check, with the case's report line as the failure message (and, with `precision`, within that
 * fraction of every tolerance).
 */
export function describeGoldenCases(api: GoldenTestApi, o: GoldenSuiteOptions): void {
  const show = o.show ?? (typeof process !== 'undefined' && Boolean(process.env?.FR_SHOW));
  for (const b of o.backends) {
    api.describe(`golden cases on ${b.name}`, () => {
      let backend: Backend;
      api.beforeAll(async () => {
        backend = await b.create();
      });
      api.afterAll(() => backend.dispose());

      api.test('every fixture of the package is here', () => {
        api.expect(o.cases).toHaveLength(o.count);
      });

      for (const c of o.cases) {
        api.test(c.name, async () => {
          const [r] = await runLossConformance([c], { losses: o.losses, backend });
          const report = formatLossConformance([r]);
          if (show) console.log(report);
          api.expect(r.error, report).toBeUndefined();
          api.expect(r.pass, report).toBe(true);
          if (o.precision === undefined) return;
          const ratios = precisionRatios(r);
          const ratioReport = `${c.name} on ${b.name}, error / limit: ${Object.entries(ratios).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')} (allowed ${o.precision})`;
          api.expect(Object.keys(ratios).length > 0 && Object.values(ratios).every((v) => v <= o.precision!), ratioReport).toBe(true);
        });
      }
    });
  }
}

/** Moved to @fr/core (trainers need it); re-exported here for existing imports. */
export { checkFinite } from '../finite.js';

export interface LossGradCheckOptions<P> {
  backend: Backend;
  /** Parameters given to the loss schema. */
  params?: P | Record<string, unknown>;
  batch: number;
  dim: number;
  classes: number;
  /** K sub-centers per class: the weights are [C*K, D] (default 1). */
  subCenters?: number;
  /** Per-step head inputs given to every forward (fixed margins make a random-margin head differentiable here). */
  inputs?: HeadInputs;
  /** Inputs; random (seeded) when omitted: embeddings N(0, 1), weights N(0, 1), labels uniform. */
  embeddings?: Float32Array;
  weights?: Float32Array;
  labels?: Int32Array;
  seed?: number;
  /** Central-difference step (default 1e-3). */
  eps?: number;
  rtol?: number;
  atol?: number;
  /**
   * Which gradients to check: `embeddings`, `weights` (the `*.weight` class weights) and the name of any
   * other trainable head parameter (a bias, a learnable scale). Default: all of them.
   */
  wrt?: readonly string[];
}

export interface LossGradCheckResult {
  passed: boolean;
  /** Per checked input (`embeddings`, `weights` or a parameter's name): worst |analytic - numeric|, the allowed error and where. */
  checks: ({ wrt: string } & GradDisagreement)[];
}

/**
 * Finite-difference check of a head's gradients with respect to the embeddings, the class weights
 * (`*.weight`) and every other trainable head parameter (at its initial value). Only meaningful for an
 * exact gradient rule and a stateless head: a detached margin is by design not the derivative of its
 * forward. The loss is computed in float32; the differences are taken in float64 on the host.
 */
export async function lossGradCheck<P>(loss: Loss<P>, o: LossGradCheckOptions<P>): Promise<LossGradCheckResult> {
  const { backend: be, batch: B, dim: D, classes: C } = o;
  const rows = C * (o.subCenters ?? 1);
  const rng = createRng(o.seed ?? 3);
  const x = o.embeddings ? Float32Array.from(o.embeddings) : Float32Array.from({ length: B * D }, () => rng.normal());
  const w = o.weights ? Float32Array.from(o.weights) : Float32Array.from({ length: rows * D }, () => rng.normal());
  const labels = o.labels ?? Int32Array.from({ length: B }, () => rng.int(C));
  const eps = o.eps ?? 1e-3;
  const rtol = o.rtol ?? 1e-2;
  const atol = o.atol ?? 1e-4;
  const head = loss.createHead({ backend: be, numClasses: C, embeddingDim: D, params: parseLossParams(loss, o.params), rng: createRng(1) });
  try {
    const weight = findParam(head, '.weight');
    if (!weight || weight.tensor.size !== rows * D) throw new ShapeError(`lossGradCheck: head of ${loss.name} has no [${rows}, ${D}] *.weight parameter`);
    // The host copy of every checked input; parameters are written back from it before each evaluation.
    const inputs = new Map<string, { host: Float32Array; param: NamedTensor | null }>([
      ['embeddings', { host: x, param: null }], ['weights', { host: w, param: weight }],
    ]);
    for (const p of head.parameters) {
      if (p !== weight && p.tensor.requiresGrad) inputs.set(p.name, { host: Float32Array.from(await p.tensor.data()), param: p });
    }
    const wrt = o.wrt ?? [...inputs.keys()];
    const unknown = wrt.filter((name) => !inputs.has(name));
    if (unknown.length) throw new ConfigError(`lossGradCheck: ${loss.name} has no input ${unknown.join(', ')}; valid: ${[...inputs.keys()].join(', ')}`);
    const writeParams = () => { for (const { host, param } of inputs.values()) if (param) be.write(param.tensor.buffer(), host); };
    const value = async (): Promise<number> => {
      writeParams();
      const xt = tensor(be, x, [B, D]);
      const out = tidy(() => head.forward(xt, labels, o.inputs));
      const v = await out.item();
      out.dispose();
      xt.dispose();
      return v;
    };
    writeParams();
    const xt = tensor(be, x, [B, D], { requiresGrad: true });
    tidy(() => {
      const l = head.forward(xt, labels, o.inputs);
      backward(l);
      return l;
    }).dispose();
    // A parameter the loss depends on but that got no gradient is checked against zeros (and fails).
    const gradOf = async (t: Tensor, size: number) => (t.grad ? Float32Array.from(await t.grad.data()) : new Float32Array(size));
    const analytic = new Map<string, Float32Array>();
    for (const [name, { host, param }] of inputs) analytic.set(name, await gradOf(param ? param.tensor : xt, host.length));
    xt.dispose();
    const result: LossGradCheckResult = { passed: true, checks: [] };
    for (const name of wrt) {
      const data = inputs.get(name)!.host;
      const worst = { wrt: name, ...worstDisagreement(analytic.get(name)!, await centralDifferences(data, value, eps), { atol, rtol }) };
      if (!(worst.maxError <= worst.allowed)) result.passed = false;
      result.checks.push(worst);
    }
    return result;
  } finally {
    head.dispose();
  }
}
