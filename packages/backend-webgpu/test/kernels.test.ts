import type { BinaryOp, UnaryOp } from '@fr/core';
import { describe, expect, it } from 'vitest';
import { gpu, parity, randomF32 } from './helpers.js';

// Sizes around the workgroup (256) and 1, including ones no workgroup divides.
const SIZES = [1, 7, 255, 257, 1000];

describe('elementwise kernels match the CPU backend', () => {
  it('fill and copy with offsets', async () => {
    for (const n of SIZES) {
      await parity({
        buffers: { o: randomF32(1, n + 3) },
        compare: ['o'],
        call: (k, b) => k.fill(b.o, n, 2.5),
      }, {}, `fill ${n}`);
      await parity({
        buffers: { s: randomF32(2, n + 5), d: randomF32(3, n + 9) },
        compare: ['d'],
        call: (k, b) => k.copy(b.s, b.d, n, 5, 3),
      }, {}, `copy ${n}`);
    }
  });

  it('every unary op', async () => {
    const ops: UnaryOp[] = ['neg', 'relu', 'exp', 'log', 'sqrt', 'abs', 'square', 'tanh', 'sigmoid'];
    for (const op of ops) {
      const positive = op === 'log' || op === 'sqrt';
      const a = randomF32(10, 1000, positive ? 0.01 : -12, 12);
      await parity({ buffers: { a, o: new Float32Array(1000) }, compare: ['o'], call: (k, b) => k.unary(op, b.a, b.o, 1000) },
        { atol: 1e-6, rtol: 2e-6 }, op);
    }
  });

  it('every binary op, also in place', async () => {
    const ops: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min', 'reluBackward'];
    for (const op of ops) {
      await parity({
        buffers: { a: randomF32(11, 257), b: randomF32(12, 257), o: new Float32Array(257) },
        compare: ['o'],
        call: (k, b) => k.binary(op, b.a, b.b, b.o, 257),
      }, { rtol: 1e-6 }, op);
    }
    const got = await parity({
      buffers: { a: randomF32(13, 300), b: randomF32(14, 300) },
      compare: ['a'],
      call: (k, b) => k.binary('mul', b.a, b.b, b.a, 300),
    }, { rtol: 1e-6 }, 'mul in place');
    expect(got.a.length).toBe(300);
  });

  it('axpby, affine, scaleBy, addRowVector', async () => {
    await parity({
      buffers: { a: randomF32(20, 777), b: randomF32(21, 777), o: new Float32Array(777) },
      compare: ['o'],
      call: (k, b) => k.axpby(b.a, b.b, b.o, 777, 0.3, -1.7),
    }, { rtol: 1e-6, atol: 1e-6 }, 'axpby');
    await parity({
      buffers: { a: randomF32(22, 513), o: new Float32Array(513) },
      compare: ['o'],
      call: (k, b) => k.affine(b.a, b.o, 513, -2, 0.5),
    }, { rtol: 1e-6, atol: 1e-6 }, 'affine');
    await parity({
      buffers: { a: randomF32(23, 513), s: Float32Array.of(-3.25), o: new Float32Array(513) },
      compare: ['o'],
      call: (k, b) => k.scaleBy(b.a, b.s, b.o, 513),
    }, {}, 'scaleBy');
    await parity({
      buffers: { s: Float32Array.of(3), g: Float32Array.of(0.5) },
      compare: ['s'],
      call: (k, b) => k.scaleBy(b.s, b.g, b.s, 1),
    }, {}, 'scaleBy in place');
    for (const [rows, cols] of [[1, 1], [3, 7], [17, 300]]) {
      await parity({
        buffers: { x: randomF32(24, rows * cols), v: randomF32(25, cols), o: new Float32Array(rows * cols) },
        compare: ['o'],
        call: (k, b) => k.addRowVector(b.x, b.v, b.o, rows, cols),
      }, {}, `addRowVector ${rows}x${cols}`);
    }
  });
});

describe('reductions match the CPU backend', () => {
  it('reduceSum along both axes, any size', async () => {
    for (const [rows, cols] of [[1, 1], [1, 100_003], [5, 7], [33, 1000], [300, 3]]) {
      for (const axis of [0, 1] as const) {
        const x = randomF32(30 + rows, rows * cols);
        await parity({
          buffers: { x, o: new Float32Array(axis === 0 ? cols : rows) },
          compare: ['o'],
          call: (k, b) => k.reduceSum(b.x, b.o, rows, cols, axis),
        }, { atol: 1e-5 * Math.sqrt(axis === 0 ? rows : cols), rtol: 1e-5 }, `reduceSum ${rows}x${cols} axis ${axis}`);
      }
    }
  });

  it('sumSquares of 1 to 300k elements', async () => {
    for (const n of [1, 255, 4097, 300_001]) {
      await parity({
        buffers: { x: randomF32(40 + n, n), o: new Float32Array(1) },
        compare: ['o'],
        call: (k, b) => k.sumSquares(b.x, b.o, n),
      }, { rtol: 1e-5 }, `sumSquares ${n}`);
    }
  });

  it('l2normalizeRows and its backward, including a zero row under eps', async () => {
    for (const [rows, cols] of [[1, 3], [7, 512], [4, 1000]]) {
      const x = randomF32(50, rows * cols);
      if (rows > 1) x.fill(0, cols, 2 * cols); // row 1 is all zeros: norm 0 < eps
      const y = new Float32Array(rows * cols), norms = new Float32Array(rows);
      await parity({
        buffers: { x, y, norms },
        compare: ['y', 'norms'],
        call: (k, b) => k.l2normalizeRows(b.x, b.y, b.norms, rows, cols, 1e-12),
      }, { atol: 1e-6, rtol: 1e-5 }, `l2normalize ${rows}x${cols}`);
      const yy = new Float32Array(rows * cols), nn = new Float32Array(rows);
      // Build consistent y / norms on the host for the backward.
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += x[r * cols + c] ** 2;
        nn[r] = Math.sqrt(s);
        for (let c = 0; c < cols; c++) yy[r * cols + c] = x[r * cols + c] / Math.max(nn[r], 1e-12);
      }
      await parity({
        buffers: { g: randomF32(51, rows * cols), y: yy, norms: nn, gx: new Float32Array(rows * cols) },
        compare: ['gx'],
        call: (k, b) => k.l2normalizeRowsBackward(b.g, b.y, b.norms, b.gx, rows, cols, 1e-12),
      }, { atol: 1e-5, rtol: 1e-4 }, `l2normalizeBackward ${rows}x${cols}`);
    }
  });
});

describe('indexing kernels match the CPU backend', () => {
  it('sliceCols and scatterCols (set and accumulate)', async () => {
    const rows = 9, cols = 301, start = 17, width = 260;
    await parity({
      buffers: { x: randomF32(60, rows * cols), o: new Float32Array(rows * width) },
      compare: ['o'],
      call: (k, b) => k.sliceCols(b.x, b.o, rows, cols, start, width),
    }, {}, 'sliceCols');
    for (const accumulate of [false, true]) {
      await parity({
        buffers: { x: randomF32(61, rows * width), o: randomF32(62, rows * cols) },
        compare: ['o'],
        call: (k, b) => k.scatterCols(b.x, b.o, rows, cols, start, width, accumulate),
      }, {}, `scatterCols ${accumulate}`);
    }
  });

  it('gatherRows and scatterAddRows', async () => {
    const rows = 50, cols = 129, count = 20;
    // Unique indices: a seeded shuffle of 0..rows-1.
    const idx = Int32Array.from({ length: rows }, (_, i) => i);
    const rnd = randomF32(64, rows, 0, 1);
    idx.sort((a, b) => rnd[a] - rnd[b]);
    const index = idx.slice(0, count);
    await parity({
      buffers: { x: randomF32(65, rows * cols), index, o: new Float32Array(count * cols) },
      compare: ['o'],
      call: (k, b) => k.gatherRows(b.x, b.index, b.o, count, cols),
    }, {}, 'gatherRows');
    await parity({
      buffers: { x: randomF32(66, count * cols), index, o: randomF32(67, rows * cols) },
      compare: ['o'],
      call: (k, b) => k.scatterAddRows(b.x, b.index, b.o, count, cols),
    }, {}, 'scatterAddRows');
  });

  it('prelu and its backward', async () => {
    for (const p of [{ outer: 1, channels: 1, inner: 1 }, { outer: 3, channels: 5, inner: 49 }, { outer: 2, channels: 64, inner: 7 }]) {
      const n = p.outer * p.channels * p.inner;
      await parity({
        buffers: { x: randomF32(70, n), s: randomF32(71, p.channels, 0, 0.5), o: new Float32Array(n) },
        compare: ['o'],
        call: (k, b) => k.prelu(b.x, b.s, b.o, p),
      }, {}, 'prelu');
      await parity({
        buffers: { g: randomF32(72, n), x: randomF32(70, n), s: randomF32(71, p.channels, 0, 0.5), gx: new Float32Array(n), gs: new Float32Array(p.channels) },
        compare: ['gx', 'gs'],
        call: (k, b) => k.preluBackward(b.g, b.x, b.s, b.gx, b.gs, p),
      }, { atol: 1e-5, rtol: 1e-5 }, 'preluBackward');
    }
  });
});

describe('optimizer steps match the CPU backend', () => {
  it('sgdStep: plain, momentum with dampening, nesterov', async () => {
    const n = 1001;
    for (const p of [
      { n, lr: 0.1, momentum: 0, dampening: 0, weightDecay: 5e-4, nesterov: false },
      { n, lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 5e-4, nesterov: false },
      { n, lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: true },
    ]) {
      await parity({
        buffers: { w: randomF32(80, n), g: randomF32(81, n), m: randomF32(82, n) },
        compare: ['w', 'm'],
        call: (k, b) => k.sgdStep(b.w, b.g, b.m, p),
      }, { atol: 1e-6, rtol: 1e-6 }, `sgd ${JSON.stringify(p)}`);
    }
  });

  it('adamwStep at steps 1 and 10', async () => {
    const n = 513;
    for (const step of [1, 10]) {
      await parity({
        buffers: { w: randomF32(90, n), g: randomF32(91, n), m: randomF32(92, n, -0.1, 0.1), v: randomF32(93, n, 0, 0.01) },
        compare: ['w', 'm', 'v'],
        call: (k, b) => k.adamwStep(b.w, b.g, b.m, b.v, { n, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, step }),
      }, { atol: 1e-6, rtol: 1e-5 }, `adamw step ${step}`);
    }
  });
});

describe('dispatch grids', () => {
  it('elementwise kernels cover more than 65535 workgroups (2-D grid)', async () => {
    const backend = await gpu();
    const n = 65536 * 256 + 300; // 65537 workgroups of 256
    const b = backend.alloc(n, 'float32', { label: 'big' });
    backend.kernels.fill(b, n, 1.5);
    backend.kernels.affine(b, b, n, 2, 1);
    const out = backend.alloc(1, 'float32');
    backend.kernels.sumSquares(b, out, n);
    const [s] = await backend.read(out, 'float32', 1);
    expect(s).toBeCloseTo(16 * n, -3);
    const tail = await backend.read(b, 'float32', n);
    expect(tail[n - 1]).toBe(4);
    expect(tail[0]).toBe(4);
    backend.free(b);
    backend.free(out);
  });
});
