import { describe, expect, test } from 'vitest';
import {
  add, adamw, backward, clipGradNorm, clipGradsToNorm, globalGradNorm, gradNorm, ConfigError, cosineMarginHead, createRng, createSchedule, DataError, DisposedError,
  kaimingUniform, keep, linear, matmul, parseConfig, pluginUnion, relu, scaledTransform, sgd, ShapeError, tensor, tidy,
  zeros, defineLoss, z, roundToFloat16, type NamedTensor,
} from '@fr/core';

import { createCpuBackend, type CpuBuffer } from './index.js';

const backend = createCpuBackend();

/** A generated problem: K classes, each a Gaussian blob around a random centre in 20-d. */
function problem(seed: number, classes: number, perClass: number) {
  const rng = createRng(seed);
  const dim = 20;
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => rng.normal()));
  const xs: number[] = [];
  const ys: number[] = [];
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < perClass; i++) {
      for (let d = 0; d < dim; d++) xs.push(centres[c][d] + 0.9 * rng.normal());
      ys.push(c);
    }
  }
  return { x: Float32Array.from(xs), y: Int32Array.from(ys), n: ys.length, dim };
}

describe('end to end', () => {
  test('an MLP with a cosine classifier learns a generated problem: loss falls by more than 5x', async () => {
    const classes = 10;
    const data = problem(3, classes, 40);
    const rng = createRng(11);
    const hidden = 64, embed = 16;
    const p = (name: string, shape: number[], init: Float32Array): NamedTensor => ({
      name, tensor: tensor(backend, init, shape, { requiresGrad: true, name }),
    });
    const params = [
      p('fc1.weight', [hidden, data.dim], kaimingUniform(rng, [hidden, data.dim])),
      p('fc1.bias', [hidden], new Float32Array(hidden)),
      p('fc2.weight', [embed, hidden], kaimingUniform(rng, [embed, hidden])),
      p('fc2.bias', [embed], new Float32Array(embed)),
    ];
    const loss = defineLoss({
      name: 'test-normface',
      description: 'normface for the test',
      params: z.object({ s: z.number().default(16) }),
      createHead: (ctx) => cosineMarginHead(ctx, { name: 'head', transform: () => scaledTransform(ctx.params.s), reducer: 'softmax-ce' }),
    });
    const head = loss.createHead({ backend, numClasses: classes, embeddingDim: embed, params: { s: 16 }, rng });
    const all = [...params, ...head.parameters];
    const opt = sgd(all, { momentum: 0.9, weightDecay: 5e-4 });
    const schedule = createSchedule({ name: 'cosine', warmupSteps: 5, minLr: 0 }, 0.1, 120);
    const order = [...Array(data.n).keys()];
    const losses: number[] = [];
    const batch = 64;
    for (let step = 0; step < 120; step++) {
      if ((step * batch) % data.n < batch) rng.shuffle(order);
      const idx = Array.from({ length: batch }, (_, i) => order[(step * batch + i) % data.n]);
      const xb = new Float32Array(batch * data.dim);
      const yb = new Int32Array(batch);
      idx.forEach((j, i) => {
        xb.set(data.x.subarray(j * data.dim, (j + 1) * data.dim), i * data.dim);
        yb[i] = data.y[j];
      });
      const l = tidy(() => {
        const x = tensor(backend, xb, [batch, data.dim]);
        const h = relu(linear(x, params[0].tensor, params[1].tensor));
        const e = linear(h, params[2].tensor, params[3].tensor);
        const out = head.forward(e, yb);
        backward(out);
        clipGradNorm(all, 5).dispose();
        opt.step(schedule(step));
        opt.zeroGrad();
        return out;
      });
      losses.push(await l.item());
      l.dispose();
    }
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    console.log(`MLP loss ${first.toFixed(3)} -> ${last.toFixed(3)} (${(first / last).toFixed(1)}x)`);
    expect(first / last).toBeGreaterThan(5);
    // Nothing leaks: only parameters, optimizer state and the head remain alive.
    expect(backend.stats().buffersLive).toBe(all.length * 2);
  });
});

describe('optimizers follow torch.optim', () => {
  test('SGD with momentum, weight decay and nesterov, two steps by hand', async () => {
    for (const nesterov of [false, true]) {
      const w = tensor(backend, [1, -2], [2], { requiresGrad: true, name: 'w' });
      const opt = sgd([{ name: 'w', tensor: w }], { momentum: 0.9, weightDecay: 0.1, nesterov });
      let wv = [1, -2];
      let buf = [0, 0];
      for (const g of [[0.5, 0.25], [-1, 2]]) {
        w.grad = keep(tensor(backend, g, [2]));
        opt.step(0.1);
        opt.zeroGrad();
        const d = g.map((gi, i) => gi + 0.1 * wv[i]);
        buf = buf.map((b, i) => 0.9 * b + d[i]);
        const step = nesterov ? d.map((di, i) => di + 0.9 * buf[i]) : buf;
        wv = wv.map((x, i) => x - 0.1 * step[i]);
      }
      const got = await w.data();
      expect(got[0]).toBeCloseTo(wv[0], 6);
      expect(got[1]).toBeCloseTo(wv[1], 6);
    }
  });
  test('AdamW first step moves each weight by about lr against the gradient sign', async () => {
    const w = tensor(backend, [1, -2], [2], { requiresGrad: true });
    const opt = adamw([{ name: 'w', tensor: w }], { weightDecay: 0 });
    w.grad = keep(tensor(backend, [0.3, -7], [2]));
    opt.step(0.01);
    const got = await w.data();
    expect(got[0]).toBeCloseTo(0.99, 6);
    expect(got[1]).toBeCloseTo(-1.99, 6);
  });
  test('clipGradNorm scales gradients to the max norm and returns the norm', async () => {
    const a = tensor(backend, [0, 0], [2], { requiresGrad: true });
    const b = tensor(backend, [0], [1], { requiresGrad: true });
    a.grad = keep(tensor(backend, [3, 0], [2]));
    b.grad = keep(tensor(backend, [4], [1]));
    const norm = clipGradNorm([{ name: 'a', tensor: a }, { name: 'b', tensor: b }], 1);
    expect(await norm.item()).toBeCloseTo(5, 6);
    expect(Array.from(await a.grad.data())[0]).toBeCloseTo(0.6, 5);
    expect(Array.from(await b.grad.data())[0]).toBeCloseTo(0.8, 5);
  });
  test('gradNorm is the global norm, and NaN in any gradient makes it NaN', async () => {
    const a = tensor(backend, [0, 0], [2], { requiresGrad: true });
    const b = tensor(backend, [0], [1], { requiresGrad: true });
    a.grad = keep(tensor(backend, [3, 0], [2]));
    b.grad = keep(tensor(backend, [4], [1]));
    const params = [{ name: 'a', tensor: a }, { name: 'b', tensor: b }];
    const norm = gradNorm(params);
    expect(await norm.item()).toBeCloseTo(5, 6);
    expect(Array.from(await a.grad.data())).toEqual([3, 0]);
    b.grad.dispose();
    b.grad = keep(tensor(backend, [NaN], [1]));
    const bad = gradNorm(params);
    expect(await bad.item()).toBeNaN();
  });
  test('globalGradNorm and clipGradsToNorm span several backends; the one-device forms refuse them by name', async () => {
    const other = createCpuBackend();
    const a = tensor(backend, [0, 0], [2], { requiresGrad: true });
    const b = tensor(other, [0], [1], { requiresGrad: true });
    a.grad = keep(tensor(backend, [3, 0], [2]));
    b.grad = keep(tensor(other, [4], [1]));
    const params = [{ name: 'a', tensor: a }, { name: 'b', tensor: b }];
    expect(() => gradNorm(params)).toThrow(/gradNorm: a and b are on different backends; use globalGradNorm/);
    expect(() => clipGradNorm(params, 1)).toThrow(/clipGradNorm: a and b are on different backends/);
    const norm = await globalGradNorm(params);
    expect(norm).toBe(5);
    // Under the limit nothing is touched.
    expect(clipGradsToNorm(params, 10, norm)).toBe(1);
    expect(Array.from(await a.grad.data())).toEqual([3, 0]);
    const factor = clipGradsToNorm(params, 1, norm);
    expect(factor).toBe(Math.fround(1 / (5 + 1e-6)));
    expect(Array.from(await a.grad.data())[0]).toBeCloseTo(0.6, 6);
    expect(Array.from(await b.grad.data())[0]).toBeCloseTo(0.8, 6);
    expect(() => clipGradsToNorm(params, 1, NaN)).toThrow(/the norm must be finite and non-negative, got NaN/);
    b.grad.dispose();
    b.grad = keep(tensor(other, [Infinity], [1]));
    expect(await globalGradNorm(params)).toBe(Infinity);
    // On one backend it agrees with the device-side clip to float32 rounding.
    const c = tensor(backend, [0, 0, 0], [3], { requiresGrad: true });
    const grads = [1.5, -2.25, 7];
    c.grad = keep(tensor(backend, grads, [3]));
    const one = [{ name: 'c', tensor: c }];
    const known = await globalGradNorm(one);
    const device = gradNorm(one);
    expect(known).toBeCloseTo(await device.item(), 5);
    clipGradsToNorm(one, 2, known);
    const viaKnown = Array.from(await c.grad.data());
    c.grad.dispose();
    c.grad = keep(tensor(backend, grads, [3]));
    clipGradNorm(one, 2).dispose();
    const viaDevice = Array.from(await c.grad.data());
    viaKnown.forEach((v, i) => expect(v).toBeCloseTo(viaDevice[i], 6));
  });
});

describe('float16 buffers', () => {
  test('hold binary16 values in 2 bytes, read back as float32, and refuse float32-only kernels', async () => {
    const be = createCpuBackend();
    const h = be.alloc(3, 'float16', { label: 'h' });
    expect(be.stats().bytesLive).toBe(6);
    be.write(h, Float32Array.of(0.1, 70000, -1.5));
    expect(Array.from(await be.read(h, 'float16', 3))).toEqual([0.0999755859375, Infinity, -1.5]);
    be.kernels.fill(h, 2, 2.5);
    expect(Array.from(await be.read(h, 'float16', 3))).toEqual([2.5, 2.5, -1.5]);
    const f = be.alloc(3, 'float32', { label: 'f' });
    be.kernels.fromFloat16(h, f, 3);
    expect(Array.from(await be.read(f, 'float32', 3))).toEqual([2.5, 2.5, -1.5]);
    expect(() => be.kernels.unary('exp', h, f, 3)).toThrow(/h holds float16; this kernel reads and writes float32/);
    expect(() => be.kernels.copy(h, f, 3, 0, 0)).toThrow(/copy from float16 to float32/);
    expect(() => be.kernels.toFloat16(h, h, 3)).toThrow(/float16/);
  });
  test('float16 matmul operands and output, margin-loss logits and gradient: the float32 kernel on the rounded inputs, its outputs rounded once', async () => {
    const be = createCpuBackend();
    const rng = createRng(9);
    const round = (xs: Float32Array) => Float32Array.from(xs, (v) => roundToFloat16(v));
    const upload = (xs: Float32Array, dtype: 'float32' | 'float16') => {
      const b = be.alloc(xs.length, dtype);
      be.write(b, xs);
      return b;
    };
    const read = async (b: CpuBuffer, n: number) => (await be.read(b, 'float32', n)) as Float32Array;
    // A is 5x9 stored transposed, B 9x7, C 5x7 (odd: a float16 pair straddles two rows).
    const a = Float32Array.from({ length: 45 }, () => rng.normal());
    const b = Float32Array.from({ length: 63 }, () => rng.normal());
    const p = { m: 5, n: 7, k: 9, transA: true, transB: false, alpha: 0.5, beta: 0 };
    const want = be.alloc(35, 'float32');
    be.kernels.matmul(upload(round(a), 'float32'), upload(b, 'float32'), want, p);
    const got = be.alloc(35, 'float16');
    be.kernels.matmul(upload(a, 'float16'), upload(b, 'float32'), got, { ...p, halfA: true, halfC: true });
    expect(Array.from(await read(got, 35))).toEqual(Array.from(round(await read(want, 35))));
    expect(() => be.kernels.matmul(upload(a, 'float16'), upload(b, 'float32'), got, { ...p, halfA: true, halfC: true, beta: 1 })).toThrow(/needs beta 0, got 1/);
    expect(() => be.kernels.matmul(upload(a, 'float32'), upload(b, 'float32'), got, { ...p, halfA: true })).toThrow(/holds float32, not float16/);

    const rows = 3, cols = 11;
    const z = Float32Array.from({ length: rows * cols }, () => rng.uniform() * 2 - 1);
    const lab = be.alloc(rows, 'int32');
    be.write(lab, Int32Array.of(4, 0, 10));
    const margin = (logits: CpuBuffer, grad: CpuBuffer, rowLoss: CpuBuffer, half: boolean) => be.kernels.marginLoss({
      logits, labels: lab, grad, rowLoss, rowLogitGrad: be.alloc(rows, 'float32'), rowContext: null, bias: null, rows, cols, classOffset: 0,
      transform: scaledTransform(30), reducer: 'softmax-ce', positiveWeight: 1, negativeWeight: 1, scale: 1 / rows, halfLogits: half, halfGrad: half,
    });
    const [g32, l32, g16, l16] = [be.alloc(rows * cols, 'float32'), be.alloc(rows, 'float32'), be.alloc(rows * cols, 'float16'), be.alloc(rows, 'float32')];
    margin(upload(round(z), 'float32'), g32, l32, false);
    margin(upload(z, 'float16'), g16, l16, true);
    expect(Array.from(await read(l16, rows))).toEqual(Array.from(await read(l32, rows)));
    expect(Array.from(await read(g16, rows * cols))).toEqual(Array.from(round(await read(g32, rows * cols))));
  });
});

describe('bad input is a clear error', () => {
  test('wrong shapes name the op and the shapes', () => {
    const a = zeros(backend, [2, 3]);
    const b = zeros(backend, [2, 3]);
    expect(() => matmul(a, b)).toThrow(ShapeError);
    expect(() => matmul(a, b)).toThrow(/inner dimensions differ: op\(A\) is 2x3, op\(B\) is 2x3/);
    expect(() => add(a, zeros(backend, [3, 2]))).toThrow(/add .*expected shape \[2, 3\]/);
  });
  test('a dtype mismatch names the expected dtype', () => {
    const ints = tensor(backend, Int32Array.of(1, 2), [1, 2]);
    expect(() => matmul(ints, zeros(backend, [2, 2]))).toThrow(/expected dtype float32/);
    expect(() => tensor(backend, [1, 2, 3], [2, 2], { name: 'x' })).toThrow(/x: 3 values do not fill shape \[2, 2\]/);
  });
  test('use after dispose names the tensor', () => {
    const t = tensor(backend, [1, 2], [1, 2], { name: 'features' });
    t.dispose();
    expect(() => add(t, t)).toThrow(DisposedError);
    expect(() => add(t, t)).toThrow(/"features" .* used after it was disposed/);
  });
  test('labels out of range name the row and the range', () => {
    const head = cosineMarginHead(
      { backend, numClasses: 4, embeddingDim: 3, params: {}, rng: createRng(1) },
      { name: 'head', transform: () => scaledTransform(2), reducer: 'softmax-ce' },
    );
    expect(() => tidy(() => head.forward(zeros(backend, [2, 3]), Int32Array.of(1, 4)))).toThrow(DataError);
    expect(() => tidy(() => head.forward(zeros(backend, [2, 3]), Int32Array.of(1, 4)))).toThrow(/label 4 at row 1 is outside \[0, 4\)/);
    expect(() => tidy(() => head.forward(zeros(backend, [2, 5]), Int32Array.of(1, 2)))).toThrow(/embeddings must be \[B, 3\]/);
  });
  test('a config that fails its schema lists the field; an unknown loss lists the installed ones', () => {
    const mk = (name: string) => defineLoss({ name, description: '', params: z.object({ s: z.number().positive().default(64) }), createHead: () => { throw new Error('unused'); } });
    const schema = z.object({ loss: pluginUnion('loss', [mk('arcface'), mk('cosface')]), batchSize: z.number().int().positive() });
    expect(parseConfig(schema, { loss: { name: 'cosface' }, batchSize: 4 })).toEqual({ loss: { name: 'cosface', s: 64 }, batchSize: 4 });
    expect(() => parseConfig(schema, { loss: { name: 'arcfase' }, batchSize: 4 }, 'run.yaml')).toThrow(ConfigError);
    expect(() => parseConfig(schema, { loss: { name: 'arcfase' }, batchSize: 4 }, 'run.yaml')).toThrow(/unknown loss "arcfase"; installed: arcface, cosface/);
    expect(() => parseConfig(schema, { loss: { name: 'arcface', s: -1 }, batchSize: 0 }, 'run.yaml')).toThrow(/run.yaml is invalid:\n  - loss.s: .*\n  - batchSize: /);
  });
  test('an allocation over the limit names the tensor and the limit', () => {
    const small = createCpuBackend({ maxBufferSize: 1024 });
    expect(() => zeros(small, [16, 17], 'classifier.weight')).toThrow(/classifier.weight needs 1088 bytes, over the limit of 1024 bytes/);
  });
});

describe('scopes', () => {
  test('tidyAsync disposes what it made across awaits and keeps what it returns', async () => {
    const { tidyAsync } = await import('@fr/core');
    const before = backend.stats().buffersLive;
    const kept = await tidyAsync(async () => {
      const a = tensor(backend, [1, 2], [2]);
      await a.data();
      const b = add(a, a);
      await Promise.resolve();
      return add(b, a);
    });
    expect(Array.from(await kept.data())).toEqual([3, 6]);
    expect(backend.stats().buffersLive).toBe(before + 1);
    kept.dispose();
    expect(backend.stats().buffersLive).toBe(before);
  });
});
