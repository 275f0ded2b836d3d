/**
 * What the WebGPU kernel families share: compiling and dispatching a kernel from its description
 * (one pipeline per kernel, specialisation and workgroup size; shapes in uniforms), the flat and
 * per-row reduction shapes, the per-channel two-pass reductions and the matmul every product and
 * 1x1 convolution runs on.
 */
import { BackendError, type MatmulParams } from '@fr/core';
import { DIRECT_TILE_M, DIRECT_TILE_N, matmulDirectKey, matmulDirectSource, matmulKey, matmulParams, matmulSource, TILE, type MatmulStorage } from './matmul.js';
import type { GpuBuffer, Runtime } from './runtime.js';
import { uniformLayout, type ScalarType } from './uniforms.js';
import { flatMain, groupMain, parseBinding, reductions, storage, uniform } from './wgsl.js';

/** From this many rows on, row normalisation runs one thread per row instead of a workgroup. */
const THREAD_PER_ROW_MIN = 1024;
/** Threads the per-channel reductions (batch norm, PReLU slopes) aim for. */
const CHANNEL_THREADS = 4096;

export type Fields = readonly (readonly [string, ScalarType])[];

export interface KernelDef {
  fields: Fields;
  /** Storage bindings in order: "name", "name!" (written) or "name:i32". */
  buffers: readonly string[];
  /** WGSL after the bindings (helpers) and the entry body. */
  helpers?: string;
  main: (wg: number) => string;
}

export interface KernelOptions {
  /**
   * Matmul form: "tiled" stages tiles in workgroup memory (hardware GPUs); "direct" reads storage
   * with no barrier (software adapters, where a barrier switches every invocation of a workgroup).
   */
  matmul: 'tiled' | 'direct';
  /**
   * Row normalisation and marginLoss: "workgroup" (one workgroup per row with a tree reduction;
   * row normalisation goes one thread per row from THREAD_PER_ROW_MIN rows on: hardware) or
   * "thread" (always one thread per row: software adapters, where normalising 1,000 rows of 128
   * took 412 ms in workgroups).
   */
  rowReduction: 'workgroup' | 'thread';
}

/** The shared parts of the kernel table, for the files of its families (kernels.ts, layers.ts). */
export function createKernelContext(rt: Runtime, wg: number, options: KernelOptions) {
  const metas = new Map<string, { layout: ReturnType<typeof uniformLayout<string>>; writable: boolean[] }>();

  function source(def: KernelDef): string {
    const layout = uniformLayout(def.fields);
    const bindings = def.buffers.map((spec, i) => {
      const b = parseBinding(spec);
      return storage(i, b.name, b.type, b.write);
    });
    return [layout.struct('Params'), ...bindings, uniform(def.buffers.length, 'p', 'Params'), def.helpers ?? '', def.main(wg)].join('\n');
  }

  /** Dispatches kernel `name` (+ `spec`) over `groups` workgroups. */
  function run(
    name: string,
    spec: string,
    def: () => KernelDef,
    buffers: GpuBuffer[],
    values: Record<string, number | boolean>,
    groups: number,
    scratch: readonly GpuBuffer[] = [],
  ): void {
    if (groups === 0) return;
    const key = `${name}${spec ? `:${spec}` : ''}:wg${wg}`;
    let meta = metas.get(key);
    let built: KernelDef | null = null;
    if (!meta) {
      built = def();
      meta = { layout: uniformLayout(built.fields), writable: built.buffers.map((b) => parseBinding(b).write) };
      metas.set(key, meta);
    }
    rt.dispatch({
      key,
      source: () => source(built ?? def()),
      storage: buffers,
      writable: meta.writable,
      uniforms: [meta.layout.pack(values)],
      workgroups: rt.grid(groups),
      scratch,
    });
  }

  const flat = (n: number) => Math.ceil(n / wg);
  const threadPerRow = (rows: number) => options.rowReduction === 'thread' || rows >= THREAD_PER_ROW_MIN;
  // marginLoss keeps one workgroup per row; "thread" makes that workgroup one invocation, so its
  // tree reductions vanish (on SwiftShader: 25 ms instead of 155 ms for 128 rows of 1,000).
  const marginWg = options.rowReduction === 'thread' ? 1 : wg;
  const guard = (body: string, n = 'p.n') => `  if (gid >= ${n}) { return; }\n${body}`;

  const elementwise = (buffers: KernelDef['buffers'], fields: Fields, body: string, helpers = ''): KernelDef => ({
    fields: [['n', 'u32'], ...fields],
    buffers,
    helpers,
    main: (w) => flatMain(w, guard(body)),
  });

  /** One workgroup per row summing cols; out[row] = scale * sum. */
  const rowSum = (): KernelDef => ({
    fields: [['rows', 'u32'], ['cols', 'u32'], ['scale', 'f32']],
    buffers: ['x', 'y!'],
    helpers: reductions(wg),
    main: (w) => groupMain(w, `
  if (grp >= p.rows) { return; }
  var acc = 0.0;
  for (var c = lid; c < p.cols; c = c + ${w}u) { acc = acc + x[grp * p.cols + c]; }
  let total = fr_sum(acc, lid);
  if (lid == 0u) { y[grp] = p.scale * total; }`),
  });

  /**
   * Per-channel reductions over an [outer, channels, inner] tensor run one thread per (channel,
   * slice of outer rows), with no workgroup barrier: software adapters run barriers slowly, and
   * the slices keep a GPU busy when channels are few. A second pass merges the slices.
   */
  const channelSlices = (q: { outer: number; channels: number; inner: number }) => {
    const total = q.outer * q.inner;
    // Enough threads to fill the device, but at least ~256 elements per slice.
    const count = Math.max(1, Math.min(Math.ceil(total / 256), Math.ceil(CHANNEL_THREADS / q.channels)));
    return { count, chunk: Math.ceil(total / count) };
  };
  const channelFields: Fields = [['outer', 'u32'], ['channels', 'u32'], ['inner', 'u32'], ['slices', 'u32'], ['chunk', 'u32'], ['threads', 'u32']];
  const channelValues = (q: { outer: number; channels: number; inner: number }, sl: { count: number; chunk: number }) => ({
    outer: q.outer, channels: q.channels, inner: q.inner, slices: sl.count, chunk: sl.chunk, threads: sl.count * q.channels,
  });
  /** Thread gid = slice * channels + c; positions t0..t1 of the channel's outer x inner elements. */
  const channelSliceHeader = `  let c = gid % p.channels;
  let t0 = min(p.outer * p.inner, (gid / p.channels) * p.chunk);
  let t1 = min(p.outer * p.inner, t0 + p.chunk);`;
  /** Walks the slice with one division at its start; `idx` is the element's flat index. */
  const channelSliceLoop = (body: string) => `  {
    var i = t0 % p.inner;
    var idx = ((t0 / p.inner) * p.channels + c) * p.inner + i;
    for (var t = t0; t < t1; t = t + 1u) {
${body}
      i = i + 1u;
      idx = idx + 1u;
      if (i == p.inner) { i = 0u; idx = idx + (p.channels - 1u) * p.inner; }
    }
  }`;

  /** One thread per column summing rows: out[col] = sum over rows. */
  const colSum = (): KernelDef => ({
    fields: [['rows', 'u32'], ['cols', 'u32']],
    buffers: ['x', 'y!'],
    main: (w) => flatMain(w, guard(`  var acc = 0.0;
  for (var r = 0u; r < p.rows; r = r + 1u) { acc = acc + x[r * p.cols + gid]; }
  y[gid] = acc;`, 'p.cols')),
  });

  /**
   * Sums columns of a [rows, cols] scratch of partial results into `out`, releasing the scratch.
   * Used by the two-pass reductions, whose first pass needs no workgroup barrier.
   */
  const sumPartials = (partials: GpuBuffer, out: GpuBuffer, rows: number, cols: number) =>
    run('colSum', '', colSum, [partials, out], { rows, cols }, flat(cols), [partials]);

  /**
   * The matmul in the configured form (tiled or direct), optionally over a batch of products
   * (z workgroups) whose operands start sa, sb, sc elements apart.
   */
  function gemm(a: GpuBuffer, b: GpuBuffer, out: GpuBuffer, q: MatmulParams, batch = { count: 1, sa: 0, sb: 0, sc: 0 }): void {
    const { m, n, k } = q;
    if (m === 0 || n === 0 || batch.count === 0) return;
    const direct = options.matmul === 'direct';
    const h: MatmulStorage = { halfA: q.halfA ?? false, halfB: q.halfB ?? false, halfC: q.halfC ?? false };
    const operands = [[h.halfA, 'halfA', a, 'A'], [h.halfB, 'halfB', b, 'B'], [h.halfC, 'halfC', out, 'output']] as const;
    for (const [flag, name, buffer, role] of operands) {
      if (flag !== (buffer.dtype === 'float16')) {
        throw new BackendError(`webgpu backend: matmul with ${name} ${flag} got a ${buffer.dtype} ${role} (${buffer.label || 'unnamed'})`);
      }
    }
    if (h.halfC && q.beta !== 0) throw new BackendError(`webgpu backend: matmul into float16 ${out.label || 'output'} needs beta 0, got ${q.beta}`);
    const gx = Math.ceil(n / (direct ? DIRECT_TILE_N : TILE)), gy = Math.ceil(m / (direct ? DIRECT_TILE_M : TILE));
    const max = rt.limits.maxWorkgroupsPerDimension;
    if (gx > max || gy > max || batch.count > max) {
      throw new BackendError(`webgpu backend: matmul ${m}x${n} (batch ${batch.count}) needs ${gx}x${gy}x${batch.count} workgroups, over ${max} per dimension`);
    }
    rt.dispatch({
      key: direct ? matmulDirectKey(q.transA, q.transB, h) : matmulKey(q.transA, q.transB, h),
      source: () => (direct ? matmulDirectSource(q.transA, q.transB, h) : matmulSource(q.transA, q.transB, h)),
      storage: [a, b, out],
      writable: [false, false, true],
      uniforms: [matmulParams.pack({ m, n, k, alpha: q.alpha, beta: q.beta, sa: batch.sa, sb: batch.sb, sc: batch.sc })],
      workgroups: [gx, gy, batch.count],
    });
  }

  return { rt, wg, options, run, flat, threadPerRow, marginWg, guard, elementwise, rowSum, colSum, sumPartials, channelSlices, channelFields, channelValues, channelSliceHeader, channelSliceLoop, gemm };
}

export type KernelContext = ReturnType<typeof createKernelContext>;
