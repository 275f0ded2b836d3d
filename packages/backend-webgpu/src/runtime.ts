/**
 * The device side of the backend: buffer pool, pipeline cache, batched command recording, uniform
 * arena, async readback and error reporting. Kernels (kernels.ts) only describe dispatches.
 */
import { BackendError, float16ToFloat32Array, float32ToFloat16Array, type BackendStats, type DType } from '@fr/core';

/** Bytes a buffer of `size` elements occupies on the device (float16: two per 32-bit word). */
export function storageBytes(size: number, dtype: DType): number {
  return dtype === 'float16' ? Math.ceil(size / 2) * 4 : size * 4;
}

/** A tensor's storage on the device. `size` is in elements; the GPU buffer may be larger (pooled). */
export interface GpuBuffer {
  readonly buffer: GPUBuffer;
  readonly size: number;
  readonly dtype: DType;
  readonly label: string;
}

interface OwnedBuffer extends GpuBuffer {
  freed: boolean;
  readonly bytes: number;
}

export interface Dispatch {
  /** Pipeline cache key: kernel name plus every compile-time specialisation. */
  key: string;
  /** Builds the WGSL; called only on a cache miss. */
  source: () => string;
  /** Storage bindings 0..k-1. */
  storage: readonly GpuBuffer[];
  /** Which storage bindings the kernel writes (the others are read-only). */
  writable: readonly boolean[];
  /** Uniform bindings k.. in order. */
  uniforms: readonly ArrayBuffer[];
  /** Workgroups in x, y (see `grid`) and optionally z. */
  workgroups: readonly [number, number] | readonly [number, number, number];
  /** Buffer copies recorded just before the dispatch (packing small inputs together). */
  copies?: readonly { src: GpuBuffer; dst: GpuBuffer; dstOffset: number; bytes: number }[];
  /** Scratch buffers (from `scratch`) to return to the pool once the dispatch is recorded. */
  scratch?: readonly GpuBuffer[];
}

export interface RuntimeOptions {
  /** Dispatches recorded before a submit (default 64). */
  batchSize: number;
  /** Pooled bytes kept for reuse after free (default 512 MiB). */
  maxPooledBytes: number;
  /** Refuse buffers larger than this many bytes (default: the device limits). */
  maxBufferSize?: number;
  /** Print every compiled shader with its key. */
  debugWgsl: boolean;
  /** Destroy the device in dispose(). */
  destroyDevice: boolean;
}

export interface WebGpuStats extends BackendStats {
  /** Command buffers submitted. */
  submits: number;
  /** Compute pipelines compiled. */
  pipelines: number;
  /** Bytes held by the pool for reuse. */
  bytesPooled: number;
}

const STORAGE_USAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST
const STAGING_USAGE = 0x1 | 0x8; // MAP_READ | COPY_DST
const UNIFORM_USAGE = 0x40 | 0x8; // UNIFORM | COPY_DST
const MAP_READ = 0x1;
const ARENA_BYTES = 1 << 18;

/**
 * Size classes: powers of two up to 1 MiB, then steps of 1/8 of the enclosing power of two, so a
 * freed buffer serves many nearby sizes while wasting at most 12.5%.
 */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 4) * 4);
  if (b <= 1 << 20) return 2 ** Math.ceil(Math.log2(b));
  const step = 2 ** Math.floor(Math.log2(b)) / 8;
  return Math.ceil(b / step) * step;
}

export class Runtime {
  readonly limits: { maxBufferSize: number; maxStorageBufferBindingSize: number; maxWorkgroupsPerDimension: number };
  private readonly uniformAlign: number;
  private readonly pipelines = new Map<string, { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>();
  private readonly layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  private readonly pool = new Map<string, GPUBuffer[]>();
  private readonly live = new Set<OwnedBuffer>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private batched = 0;
  private readonly arena: GPUBuffer;
  private readonly arenaHost = new Uint8Array(ARENA_BYTES);
  private arenaUsed = 0;
  /** Pending asynchronous validation results (shader compiles, submits). */
  private readonly checks = new Set<Promise<void>>();
  private pendingError: BackendError | null = null;
  private lostInfo: { reason: string; message: string } | null = null;
  private readonly rejecters = new Set<(e: Error) => void>();
  private disposed = false;
  /** Bound where an optional input or output is absent (a binding cannot be empty). */
  readonly placeholder: GpuBuffer;
  readonly placeholderOut: GpuBuffer;
  private readonly counters: WebGpuStats = {
    dispatches: 0, bytesWritten: 0, bytesRead: 0, buffersLive: 0, bytesLive: 0, submits: 0, pipelines: 0, bytesPooled: 0,
  };

  constructor(readonly device: GPUDevice, private readonly options: RuntimeOptions) {
    const l = device.limits;
    const cap = options.maxBufferSize ?? Infinity;
    this.limits = {
      maxBufferSize: Math.min(l.maxBufferSize, cap),
      maxStorageBufferBindingSize: Math.min(l.maxStorageBufferBindingSize, cap),
      maxWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    };
    this.uniformAlign = l.minUniformBufferOffsetAlignment;
    this.arena = device.createBuffer({ size: ARENA_BYTES, usage: UNIFORM_USAGE, label: 'fr.uniforms' });
    const small = (label: string): GpuBuffer => ({ buffer: device.createBuffer({ size: 16, usage: STORAGE_USAGE, label }), size: 4, dtype: 'float32', label });
    this.placeholder = small('fr.placeholder');
    this.placeholderOut = small('fr.placeholder-out');
    void device.lost.then((info) => {
      this.lostInfo = { reason: String(info.reason), message: info.message };
      const err = this.lostError();
      for (const reject of this.rejecters) reject(err);
      this.rejecters.clear();
    });
  }

  // -- buffers ---------------------------------------------------------------------------------

  alloc(size: number, dtype: DType, label: string): GpuBuffer {
    this.assertUsable(`alloc of ${label || 'a tensor'}`);
    if (!Number.isInteger(size) || size < 0) throw new BackendError(`webgpu backend: invalid size ${size} for ${label || 'a tensor'}`);
    // float16: two IEEE binary16 values per 32-bit word (WGSL pack2x16float / unpack2x16float).
    const bytes = storageBytes(size, dtype);
    const name = label || '(unnamed)';
    if (bytes > this.limits.maxBufferSize) {
      throw new BackendError(`webgpu backend: tensor ${name} needs ${bytes} bytes, over the device's maxBufferSize of ${this.limits.maxBufferSize} bytes`);
    }
    if (bytes > this.limits.maxStorageBufferBindingSize) {
      throw new BackendError(
        `webgpu backend: tensor ${name} needs ${bytes} bytes, over the device's maxStorageBufferBindingSize of ${this.limits.maxStorageBufferBindingSize} bytes (one kernel cannot bind it; shard the tensor)`,
      );
    }
    const cls = Math.min(sizeClass(bytes), Math.max(16, Math.floor(this.limits.maxStorageBufferBindingSize / 4) * 4));
    const buffer = this.acquire(Math.max(cls, bytes, 16), STORAGE_USAGE, label);
    const b: OwnedBuffer = { buffer, size, dtype, label, freed: false, bytes };
    this.live.add(b);
    this.counters.buffersLive++;
    this.counters.bytesLive += bytes;
    return b;
  }

  free(buffer: GpuBuffer): void {
    const b = buffer as OwnedBuffer;
    if (b.freed || !this.live.delete(b)) return;
    b.freed = true;
    this.counters.buffersLive--;
    this.counters.bytesLive -= b.bytes;
    if (this.disposed) return;
    // Later dispatches that reuse it are recorded after the ones that read it, so reuse is safe.
    this.release(b.buffer, STORAGE_USAGE);
  }

  private acquire(bytes: number, usage: number, label: string): GPUBuffer {
    const list = this.pool.get(`${usage}:${bytes}`);
    const hit = list?.pop();
    if (hit) {
      this.counters.bytesPooled -= hit.size;
      return hit;
    }
    return this.device.createBuffer({ size: bytes, usage, label: label || undefined });
  }

  private release(buffer: GPUBuffer, usage: number): void {
    if (this.counters.bytesPooled + buffer.size > this.options.maxPooledBytes) {
      this.flush(); // the buffer may still be referenced by recorded work
      buffer.destroy();
      return;
    }
    const key = `${usage}:${buffer.size}`;
    let list = this.pool.get(key);
    if (!list) this.pool.set(key, (list = []));
    list.push(buffer);
    this.counters.bytesPooled += buffer.size;
  }

  write(b: GpuBuffer, data: Float32Array | Int32Array, offset: number): void {
    this.assertUsable(`write to ${b.label || 'a tensor'}`);
    if ((b as OwnedBuffer).freed) throw new BackendError(`webgpu backend: write to freed buffer ${b.label || ''}`);
    if (data.length + offset > b.size || offset < 0) {
      throw new BackendError(`webgpu backend: writing ${data.length} values at ${offset} overflows ${b.label || 'a buffer'} of ${b.size}`);
    }
    if (data.length === 0) return;
    if (b.dtype === 'float16') {
      data = this.packHalf(b, data, offset);
      offset /= 2;
    }
    // queue.writeBuffer runs before any later submit: submit what reads the old contents first.
    this.flush();
    this.device.queue.writeBuffer(b.buffer, offset * 4, data.buffer, data.byteOffset, data.byteLength);
    this.counters.bytesWritten += data.byteLength;
  }

  async read(b: GpuBuffer, dtype: DType, size: number): Promise<Float32Array | Int32Array> {
    this.assertUsable(`read of ${b.label || 'a tensor'}`);
    const make = (src?: ArrayBuffer) => {
      if (dtype === 'int32') return src ? new Int32Array(src) : new Int32Array(0);
      return src ? new Float32Array(src) : new Float32Array(0);
    };
    if (size > b.size) throw new BackendError(`webgpu backend: reading ${size} values from ${b.label || 'a buffer'} of ${b.size}`);
    if (size === 0) {
      await this.settle();
      return make();
    }
    if (b.dtype === 'float16') {
      // float16 buffers read back as the float32 values they hold.
      const words = await this.read({ ...b, dtype: 'int32', size: Math.ceil(size / 2) }, 'int32', Math.ceil(size / 2));
      return float16ToFloat32Array(new Uint16Array(words.buffer, words.byteOffset, size));
    }
    const bytes = size * 4;
    // Record the copy now, so the read sees exactly the kernels enqueued before it.
    this.flush();
    const staging = this.acquire(sizeClass(bytes), STAGING_USAGE, 'fr.staging');
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(b.buffer, 0, staging, 0, bytes);
    this.device.queue.submit([enc.finish()]);
    this.counters.submits++;
    try {
      await this.guard(staging.mapAsync(MAP_READ, 0, bytes), `read of ${b.label || 'a tensor'}`);
    } catch (e) {
      if (!this.lostInfo) staging.destroy();
      await this.settle().catch(() => undefined);
      throw this.pendingError ? this.takeError() : e;
    }
    const out = make(staging.getMappedRange(0, bytes).slice(0));
    staging.unmap();
    this.release(staging, STAGING_USAGE);
    this.counters.bytesRead += bytes;
    await this.settle();
    return out;
  }

  /**
   * float16 writes: host float32 values as binary16 bits (round to nearest even), two per word.
   * A write must start at an even element and end at an even one or at the buffer's end, because
   * the device is written in whole words.
   */
  private packHalf(b: GpuBuffer, data: Float32Array | Int32Array, offset: number): Int32Array {
    if (data instanceof Int32Array) throw new BackendError(`webgpu backend: writing int32 values into float16 ${b.label || 'buffer'}`);
    const end = offset + data.length;
    if (offset % 2 !== 0 || (end % 2 !== 0 && end !== b.size)) {
      throw new BackendError(`webgpu backend: float16 ${b.label || 'buffer'} is written in pairs of values; a write of ${data.length} at ${offset} splits a pair`);
    }
    const bits = new Uint16Array(Math.ceil(data.length / 2) * 2);
    bits.set(float32ToFloat16Array(data));
    return new Int32Array(bits.buffer);
  }

  async sync(): Promise<void> {
    this.assertUsable('sync');
    this.flush();
    await this.guard(this.device.queue.onSubmittedWorkDone(), 'sync');
    await this.settle();
  }

  // -- dispatch --------------------------------------------------------------------------------

  /** Workgroup counts for `groups` workgroups: 1-D when it fits, else a 2-D grid. */
  grid(groups: number): [number, number] {
    const max = this.limits.maxWorkgroupsPerDimension;
    if (groups <= max) return [Math.max(1, groups), 1];
    const y = Math.ceil(groups / max);
    if (y > max) throw new BackendError(`webgpu backend: ${groups} workgroups exceed a ${max} x ${max} grid`);
    return [Math.ceil(groups / y), y];
  }

  dispatch(d: Dispatch): void {
    this.assertUsable(d.key);
    if (this.pendingError) throw this.takeError();
    const { pipeline, layout } = this.pipeline(d.key, d.source, d.writable, d.uniforms.length);
    const bound = this.resolveAliases(d);
    const need = d.uniforms.reduce((s, u) => s + Math.ceil(u.byteLength / this.uniformAlign) * this.uniformAlign, 0);
    if (this.arenaUsed + need > ARENA_BYTES) this.flush();
    const entries: GPUBindGroupEntry[] = bound.buffers.map((buffer, i) => ({ binding: i, resource: { buffer } }));
    d.uniforms.forEach((u, i) => {
      const offset = this.arenaUsed;
      this.arenaHost.set(new Uint8Array(u), offset);
      this.arenaUsed += Math.ceil(u.byteLength / this.uniformAlign) * this.uniformAlign;
      entries.push({ binding: d.storage.length + i, resource: { buffer: this.arena, offset, size: u.byteLength } });
    });
    const group = this.device.createBindGroup({ layout, entries });
    this.encoder ??= this.device.createCommandEncoder();
    if (d.copies && d.copies.length > 0) {
      this.pass?.end();
      this.pass = null;
      for (const c of d.copies) this.encoder.copyBufferToBuffer(c.src.buffer, 0, c.dst.buffer, c.dstOffset, c.bytes);
    }
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, group);
    this.pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2] ?? 1);
    this.counters.dispatches++;
    for (const t of bound.temps) this.release(t, STORAGE_USAGE);
    for (const t of d.scratch ?? []) this.release(t.buffer, STORAGE_USAGE);
    if (++this.batched >= this.options.batchSize) this.flush();
  }

  /** A temporary storage buffer for one dispatch (list it in `Dispatch.scratch`). */
  scratch(bytes: number): GpuBuffer {
    const buffer = this.acquire(sizeClass(bytes), STORAGE_USAGE, 'fr.scratch');
    return { buffer, size: buffer.size / 4, dtype: 'float32', label: 'fr.scratch' };
  }

  /**
   * WebGPU forbids binding one buffer both writable and read in a dispatch, but in-place calls
   * (affine(x, x), scaleBy(g, s, g), ...) are legal in the kernel table: the read side gets a
   * copy made just before the dispatch.
   */
  private resolveAliases(d: Dispatch): { buffers: GPUBuffer[]; temps: GPUBuffer[] } {
    const buffers = d.storage.map((b, i) => {
      if ((b as OwnedBuffer).freed) throw new BackendError(`webgpu backend: ${d.key} got a freed buffer ${b.label || ''} at binding ${i}`);
      return b.buffer;
    });
    const temps: GPUBuffer[] = [];
    const copies = new Map<GPUBuffer, GPUBuffer>();
    d.storage.forEach((b, i) => {
      const written = d.storage.some((o, j) => j !== i && o.buffer === b.buffer && d.writable[j]);
      if (!written) return;
      if (d.writable[i]) throw new BackendError(`webgpu backend: ${d.key} writes one buffer (${b.label || 'unnamed'}) through two bindings`);
      let copy = copies.get(b.buffer);
      if (!copy) {
        copy = this.acquire(b.buffer.size, STORAGE_USAGE, 'fr.alias');
        this.encoder ??= this.device.createCommandEncoder();
        this.pass?.end();
        this.pass = null;
        this.encoder.copyBufferToBuffer(b.buffer, 0, copy, 0, b.buffer.size);
        copies.set(b.buffer, copy);
        temps.push(copy);
      }
      buffers[i] = copy;
    });
    return { buffers, temps };
  }

  /** Submits recorded work (uniforms first: writeBuffer is ordered before the submit). */
  flush(): void {
    if (!this.encoder) return;
    this.pass?.end();
    const enc = this.encoder;
    this.encoder = null;
    this.pass = null;
    this.batched = 0;
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost.buffer, 0, this.arenaUsed);
    this.arenaUsed = 0;
    if (this.lostInfo || this.disposed) return;
    this.device.pushErrorScope('validation');
    this.device.queue.submit([enc.finish()]);
    this.counters.submits++;
    this.track(this.device.popErrorScope().then((err) => {
      if (err && !this.pendingError) this.pendingError = new BackendError(`webgpu backend: submitted work was invalid: ${err.message}`);
    }));
  }

  private pipeline(key: string, source: () => string, writable: readonly boolean[], uniforms: number) {
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const code = source();
    if (this.options.debugWgsl) console.log(`[fr webgpu] shader ${key}\n${code}`);
    const layout = this.layout(writable, uniforms);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: key });
    const pipeline = this.device.createComputePipeline({ layout: layout.pipeline, compute: { module, entryPoint: 'main' }, label: key });
    const scope = this.device.popErrorScope();
    const entry = { pipeline, layout: layout.group };
    this.pipelines.set(key, entry);
    this.counters.pipelines++;
    this.track(Promise.all([scope, module.getCompilationInfo()]).then(([err, info]) => {
      const messages = info.messages
        .filter((m) => m.type === 'error')
        .map((m) => `${m.lineNum}:${m.linePos}: ${m.message}`);
      if (!err && messages.length === 0) return;
      // Forget it so that a fixed retry is not served the broken pipeline... keyed identically.
      if (this.pipelines.get(key) === entry) this.pipelines.delete(key);
      // A compile error explains any later "invalid pipeline" error, so it wins.
      this.pendingError = new BackendError(
        `webgpu backend: shader ${key} failed to compile:\n${messages.join('\n') || err?.message}`,
      );
    }));
    return entry;
  }

  private layout(writable: readonly boolean[], uniforms: number) {
    const key = `${writable.map((w) => (w ? 'w' : 'r')).join('')}:${uniforms}u`;
    let l = this.layouts.get(key);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [];
      writable.forEach((w, i) => entries.push({ binding: i, visibility: 4, buffer: { type: w ? 'storage' : 'read-only-storage' } }));
      for (let i = 0; i < uniforms; i++) entries.push({ binding: writable.length + i, visibility: 4, buffer: { type: 'uniform' } });
      const group = this.device.createBindGroupLayout({ entries, label: key });
      l = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts: [group] }) };
      this.layouts.set(key, l);
    }
    return l;
  }

  // -- errors and lifetime ---------------------------------------------------------------------

  private track(p: Promise<void>): void {
    const q = p.catch((e: unknown) => {
      if (!this.pendingError) this.pendingError = new BackendError(`webgpu backend: ${e instanceof Error ? e.message : String(e)}`);
    });
    this.checks.add(q);
    void q.finally(() => this.checks.delete(q));
  }

  /** Waits for pending validation results and throws the first error found. */
  private async settle(): Promise<void> {
    while (this.checks.size > 0) await this.guard(Promise.all([...this.checks]), 'validation');
    if (this.pendingError) {
      // The batch recorded after the error can only be invalid: drop it.
      this.discard();
      throw this.takeError();
    }
  }

  private discard(): void {
    this.pass?.end();
    this.pass = null;
    this.encoder = null;
    this.batched = 0;
    this.arenaUsed = 0;
  }

  private takeError(): BackendError {
    const e = this.pendingError!;
    this.pendingError = null;
    return e;
  }

  /** Rejects `p`'s waiter when the device is lost, instead of leaving it pending forever. */
  private guard<T>(p: Promise<T>, what: string): Promise<T> {
    if (this.lostInfo) return Promise.reject(this.lostError());
    return new Promise<T>((resolve, reject) => {
      this.rejecters.add(reject);
      p.then(
        (v) => {
          this.rejecters.delete(reject);
          resolve(v);
        },
        (e: unknown) => {
          this.rejecters.delete(reject);
          reject(this.lostInfo ? this.lostError() : new BackendError(`webgpu backend: ${what} failed: ${e instanceof Error ? e.message : String(e)}`));
        },
      );
    });
  }

  private lostError(): BackendError {
    const i = this.lostInfo!;
    return new BackendError(`webgpu backend: the GPU device was lost (${i.reason}${i.message ? `: ${i.message}` : ''}); create a new backend`);
  }

  private assertUsable(what: string): void {
    if (this.disposed) throw new BackendError(`webgpu backend: ${what} after dispose`);
    if (this.lostInfo) throw this.lostError();
  }

  stats(): WebGpuStats {
    return { ...this.counters };
  }

  dispose(): void {
    if (this.disposed) return;
    if (!this.lostInfo) this.flush();
    this.disposed = true;
    for (const b of this.live) b.buffer.destroy();
    this.live.clear();
    for (const list of this.pool.values()) for (const b of list) b.destroy();
    this.pool.clear();
    this.arena.destroy();
    this.placeholder.buffer.destroy();
    this.placeholderOut.buffer.destroy();
    this.counters.buffersLive = 0;
    this.counters.bytesLive = 0;
    this.counters.bytesPooled = 0;
    if (this.options.destroyDevice) this.device.destroy();
  }
}
