/**
 * Differentiable ops. Each op checks its inputs, enqueues its forward kernel, and records its
 * backward rule (next to the forward, in terms of other kernels) on the tape.
 */
import type { BinaryOp, ChannelLayout, UnaryOp } from './kernels.js';
import { ShapeError } from './errors.js';
import { record } from './tape.js';
import { checkFloat } from './checks.js';
import { assertDType, assertShape, empty, full, shapeSize, Tensor, zeros } from './tensor.js';

function kernelsOf(t: Tensor) {
  return t.backend.kernels;
}

function like(t: Tensor, shape: readonly number[] = t.shape): Tensor {
  return empty(t.backend, shape);
}

function check2d(op: string, t: Tensor, what: string): [number, number] {
  if (t.rank !== 2) throw new ShapeError(`${op}: ${what} must be 2-d, got ${t.describe()}`);
  return [t.shape[0], t.shape[1]];
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/** op(A) @ op(B) for 2-d tensors; transA / transB read the stored matrix transposed. */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  checkFloat('matmul', a, b);
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const [ar, ac] = check2d('matmul', a, 'A');
  const [br, bc] = check2d('matmul', b, 'B');
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const [k2, n] = transB ? [bc, br] : [br, bc];
  if (k !== k2) {
    throw new ShapeError(`matmul: inner dimensions differ: op(A) is ${m}x${k}, op(B) is ${k2}x${n} (A ${a.describe()}, B ${b.describe()})`);
  }
  const out = like(a, [m, n]);
  mm(a, b, out, m, n, k, transA, transB);
  return record(out, 'matmul', [a, b], (g) => {
    // Each gradient is laid out as its operand is stored: dA = g op(B)^T, dB = op(A)^T g.
    const ga = a.requiresGrad ? like(a) : null;
    if (ga && transA) mm(b, g, ga, k, m, n, transB, true);
    else if (ga) mm(g, b, ga, m, k, n, false, !transB);
    const gb = b.requiresGrad ? like(b) : null;
    if (gb && transB) mm(g, a, gb, n, k, m, true, transA);
    else if (gb) mm(a, g, gb, k, n, m, !transA, false);
    return [ga, gb];
  });
}

/** out = op(a) op(b) with op(a) m x k and op(b) k x n; out's old contents are ignored. */
function mm(a: Tensor, b: Tensor, out: Tensor, m: number, n: number, k: number, transA: boolean, transB: boolean): void {
  kernelsOf(a).matmul(a.buffer(), b.buffer(), out.buffer(), { m, n, k, transA, transB, alpha: 1, beta: 0 });
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  checkFloat(op, a, b);
  assertShape(b, a.shape, `${op} (second operand must match ${a.describe()})`);
}

/** a + b, same shapes. */
export function add(a: Tensor, b: Tensor): Tensor {
  sameShape('add', a, b);
  return record(binaryRaw('add', a, b), 'add', [a, b], (g) => [g, g]);
}

/** a - b, same shapes. */
export function sub(a: Tensor, b: Tensor): Tensor {
  sameShape('sub', a, b);
  return record(binaryRaw('sub', a, b), 'sub', [a, b], (g) => [g, b.requiresGrad ? scale(g, -1) : null]);
}

/** a * b elementwise, same shapes. */
export function mul(a: Tensor, b: Tensor): Tensor {
  sameShape('mul', a, b);
  return record(binaryRaw('mul', a, b), 'mul', [a, b], (g) => [
    a.requiresGrad ? binaryRaw('mul', g, b) : null,
    b.requiresGrad ? binaryRaw('mul', g, a) : null,
  ]);
}

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const out = like(a);
  kernelsOf(a).binary(op, a.buffer(), b.buffer(), out.buffer(), a.size);
  return out;
}

/** alpha * a */
export function scale(a: Tensor, alpha: number): Tensor {
  return affine(a, alpha, 0);
}

/** alpha * a + beta */
export function affine(a: Tensor, alpha: number, beta: number): Tensor {
  checkFloat('affine', a);
  const out = like(a);
  kernelsOf(a).affine(a.buffer(), out.buffer(), a.size, alpha, beta);
  return record(out, 'affine', [a], (g) => [affine(g, alpha, 0)]);
}

/** Elementwise functions with their derivative expressed through other kernels. */
export function unary(op: Exclude<UnaryOp, 'relu'>, a: Tensor): Tensor {
  checkFloat(op, a);
  const out = like(a);
  kernelsOf(a).unary(op, a.buffer(), out.buffer(), a.size);
  return record(out, op, [a], (g) => {
    const d = like(a);
    const k = kernelsOf(a);
    switch (op) {
      case 'neg': k.affine(g.buffer(), d.buffer(), a.size, -1, 0); return [d];
      case 'exp': k.binary('mul', g.buffer(), out.buffer(), d.buffer(), a.size); return [d];
      case 'log': k.binary('div', g.buffer(), a.buffer(), d.buffer(), a.size); return [d];
      case 'sqrt': // g / (2 sqrt(a))
        k.binary('div', g.buffer(), out.buffer(), d.buffer(), a.size);
        k.affine(d.buffer(), d.buffer(), a.size, 0.5, 0);
        return [d];
      case 'square':
        k.binary('mul', g.buffer(), a.buffer(), d.buffer(), a.size);
        k.affine(d.buffer(), d.buffer(), a.size, 2, 0);
        return [d];
      case 'abs': { // g * a / |a|
        const s = like(a);
        k.binary('div', a.buffer(), out.buffer(), s.buffer(), a.size);
        k.binary('mul', g.buffer(), s.buffer(), d.buffer(), a.size);
        return [d];
      }
      case 'tanh': { // g * (1 - out^2)
        const s = like(a);
        k.unary('square', out.buffer(), s.buffer(), a.size);
        k.affine(s.buffer(), s.buffer(), a.size, -1, 1);
        k.binary('mul', g.buffer(), s.buffer(), d.buffer(), a.size);
        return [d];
      }
      case 'sigmoid': { // g * out * (1 - out)
        const s = like(a);
        k.affine(out.buffer(), s.buffer(), a.size, -1, 1);
        k.binary('mul', s.buffer(), out.buffer(), s.buffer(), a.size);
        k.binary('mul', g.buffer(), s.buffer(), d.buffer(), a.size);
        return [d];
      }
    }
  });
}

export function relu(a: Tensor): Tensor {
  checkFloat('relu', a);
  const out = like(a);
  kernelsOf(a).unary('relu', a.buffer(), out.buffer(), a.size);
  return record(out, 'relu', [a], (g) => [binaryRaw('reluBackward', g, a)]);
}

/** Adds a row vector v (length cols) to every row of x (rows x cols, or any rank with last dim cols). */
export function addRowVector(x: Tensor, v: Tensor): Tensor {
  checkFloat('addRowVector', x, v);
  const cols = x.shape[x.rank - 1];
  if (v.size !== cols) throw new ShapeError(`addRowVector: vector ${v.describe()} must have ${cols} elements to match ${x.describe()}`);
  const rows = x.size / cols;
  const out = like(x);
  kernelsOf(x).addRowVector(x.buffer(), v.buffer(), out.buffer(), rows, cols);
  return record(out, 'addRowVector', [x, v], (g) => {
    const gv = v.requiresGrad ? like(v) : null;
    if (gv) kernelsOf(x).reduceSum(g.buffer(), gv.buffer(), rows, cols, 0);
    return [g, gv];
  });
}

/** Sum of all elements, as a [1] tensor. */
export function sum(a: Tensor): Tensor {
  checkFloat('sum', a);
  const out = like(a, [1]);
  kernelsOf(a).reduceSum(a.buffer(), out.buffer(), 1, a.size, 1);
  return record(out, 'sum', [a], (g) => [broadcastScalar(g, a.shape, 1)]);
}

/** Mean of all elements, as a [1] tensor. */
export function mean(a: Tensor): Tensor {
  return scale(sum(a), 1 / a.size);
}

/** Sums over rows (axis 0) or columns (axis 1) of a 2-d tensor. */
export function sumAxis(a: Tensor, axis: 0 | 1): Tensor {
  checkFloat('sumAxis', a);
  const [rows, cols] = check2d('sumAxis', a, 'input');
  const out = like(a, axis === 0 ? [cols] : [rows]);
  kernelsOf(a).reduceSum(a.buffer(), out.buffer(), rows, cols, axis);
  return record(out, 'sumAxis', [a], (g) => {
    const d = axis === 0 ? zeros(a.backend, a.shape) : like(a);
    if (axis === 0) kernelsOf(a).addRowVector(d.buffer(), g.buffer(), d.buffer(), rows, cols);
    else mm(g, full(a.backend, [1, cols], 1), d, rows, cols, 1, false, false); // g (rows x 1) @ ones (1 x cols)
    return [d];
  });
}

/** A tensor of `shape` filled with g[0] * factor (g is a [1] tensor on the device). */
export function broadcastScalar(g: Tensor, shape: readonly number[], factor: number): Tensor {
  const out = like(g, shape);
  const k = kernelsOf(g);
  k.fill(out.buffer(), out.size, factor);
  k.scaleBy(out.buffer(), g.buffer(), out.buffer(), out.size);
  return out;
}

/** The same values under another shape (a copy: every tensor owns its storage). */
export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  if (shapeSize(shape) !== a.size) throw new ShapeError(`reshape: cannot view ${a.describe()} as [${shape.join(', ')}]`);
  const out = empty(a.backend, shape, a.dtype);
  kernelsOf(a).copy(a.buffer(), out.buffer(), a.size, 0, 0);
  return record(out, 'reshape', [a], (g) => [reshape(g, a.shape)]);
}

/** Rows of x divided by their L2 norm (clamped below by eps, as torch.nn.functional.normalize). */
export function l2normalize(x: Tensor, eps = 1e-12): Tensor {
  checkFloat('l2normalize', x);
  const [rows, cols] = check2d('l2normalize', x, 'input');
  const out = like(x);
  const norms = like(x, [rows]);
  kernelsOf(x).l2normalizeRows(x.buffer(), out.buffer(), norms.buffer(), rows, cols, eps);
  const y = record(out, 'l2normalize', [x], (g) => {
    const d = like(x);
    kernelsOf(x).l2normalizeRowsBackward(g.buffer(), out.buffer(), norms.buffer(), d.buffer(), rows, cols, eps);
    return [d];
  });
  rowNorms.set(y, norms);
  return y;
}

const rowNorms = new WeakMap<Tensor, Tensor>();

/** The row norms computed by `l2normalize` for its output (not differentiable). */
export function normsOf(normalized: Tensor): Tensor {
  const n = rowNorms.get(normalized);
  if (!n) throw new ShapeError(`normsOf: ${normalized.describe()} was not produced by l2normalize`);
  return n;
}

/** Columns [start, start + width) of a 2-d tensor. */
export function sliceCols(x: Tensor, start: number, width: number): Tensor {
  checkFloat('sliceCols', x);
  const [rows, cols] = check2d('sliceCols', x, 'input');
  if (!Number.isInteger(start) || !Number.isInteger(width) || start < 0 || width < 1 || start + width > cols) {
    throw new ShapeError(`sliceCols: columns [${start}, ${start + width}) are outside ${x.describe()}`);
  }
  const out = like(x, [rows, width]);
  kernelsOf(x).sliceCols(x.buffer(), out.buffer(), rows, cols, start, width);
  return record(out, 'sliceCols', [x], (g) => {
    const d = zeros(x.backend, x.shape);
    kernelsOf(x).scatterCols(g.buffer(), d.buffer(), rows, cols, start, width, false);
    return [d];
  });
}

/** Concatenates 2-d tensors with the same number of rows along columns. */
export function concatCols(parts: readonly Tensor[]): Tensor {
  if (parts.length === 0) throw new ShapeError('concatCols: no tensors given');
  checkFloat('concatCols', ...parts);
  const rows = check2d('concatCols', parts[0], 'part 0')[0];
  let cols = 0;
  parts.forEach((p, i) => {
    const [r, c] = check2d('concatCols', p, `part ${i}`);
    if (r !== rows) throw new ShapeError(`concatCols: part ${i} has ${r} rows, part 0 has ${rows}`);
    cols += c;
  });
  const out = like(parts[0], [rows, cols]);
  let start = 0;
  for (const p of parts) {
    kernelsOf(p).scatterCols(p.buffer(), out.buffer(), rows, cols, start, p.shape[1], false);
    start += p.shape[1];
  }
  return record(out, 'concatCols', parts, (g) => {
    let s = 0;
    return parts.map((p) => {
      const w = p.shape[1];
      const d = p.requiresGrad ? like(p) : null;
      if (d) kernelsOf(p).sliceCols(g.buffer(), d.buffer(), rows, cols, s, w);
      s += w;
      return d;
    });
  });
}

/** Rows of x picked by an int32 index tensor (Partial FC sampling, embeddings). */
export function gatherRows(x: Tensor, index: Tensor): Tensor {
  checkFloat('gatherRows', x);
  assertDType(index, 'int32', 'gatherRows index');
  const cols = check2d('gatherRows', x, 'input')[1];
  const count = index.size;
  const out = like(x, [count, cols]);
  kernelsOf(x).gatherRows(x.buffer(), index.buffer(), out.buffer(), count, cols);
  return record(out, 'gatherRows', [x], (g) => {
    const d = zeros(x.backend, x.shape);
    kernelsOf(x).scatterAddRows(g.buffer(), index.buffer(), d.buffer(), count, cols);
    return [d];
  });
}

export function channelLayout(op: string, x: Tensor, channels: number): ChannelLayout {
  if (x.rank < 2 || x.shape[1] !== channels) {
    throw new ShapeError(`${op}: expected input [N, ${channels}, ...], got ${x.describe()}`);
  }
  return { outer: x.shape[0], channels, inner: x.size / (x.shape[0] * channels) };
}

/** PReLU with one learnable slope per channel (dimension 1). */
export function prelu(x: Tensor, slope: Tensor): Tensor {
  checkFloat('prelu', x, slope);
  const p = channelLayout('prelu', x, slope.size);
  const out = like(x);
  kernelsOf(x).prelu(x.buffer(), slope.buffer(), out.buffer(), p);
  return record(out, 'prelu', [x, slope], (g) => {
    const gx = like(x);
    const gs = like(slope);
    kernelsOf(x).preluBackward(g.buffer(), x.buffer(), slope.buffer(), gx.buffer(), gs.buffer(), p);
    return [gx, gs];
  });
}

/** x W^T + b, with W stored out x in (as torch.nn.Linear). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const y = matmul(x, weight, { transB: true });
  return bias ? addRowVector(y, bias) : y;
}
