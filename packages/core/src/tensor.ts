import type { Backend, DType, HostArray, HostArrayOf } from './backend.js';
import { DisposedError, ShapeError } from './errors.js';

/** How a tensor was made, for the tape: its inputs and the rule that maps its gradient to theirs. */
export interface TapeNode {
  /** Op name, for error messages and debugging. */
  op: string;
  inputs: readonly Tensor[];
  /** Given d(loss)/d(output), returns d(loss)/d(input) per input (null where none is needed). */
  backward(gradOutput: Tensor): (Tensor | null)[];
}

let nextId = 1;

/** The id the next tensor will get: tensors made after this call have ids at least this. */
export function nextTensorId(): number {
  return nextId;
}

/**
 * An n-dimensional array held by a backend. Dispose it, or create it inside `tidy`. `D` is its dtype where
 * that is known statically (`tensor(b, new Int32Array(...), ...)` is a `Tensor<'int32'>`), so `data()` is
 * typed as the matching array; a plain `Tensor` may hold any dtype.
 */
export class Tensor<D extends DType = DType> {
  readonly id = nextId++;
  readonly size: number;
  private storage: unknown;
  /** The float16 copy that replaced the float32 storage after `packFloat16`. */
  private packed: unknown = null;
  /** Set by the tape when this tensor was produced by a recorded op. */
  node: TapeNode | null = null;
  /** Accumulated gradient of a leaf that requires it; owned by the tensor. */
  grad: Tensor | null = null;

  constructor(
    readonly backend: Backend,
    storage: unknown,
    readonly shape: readonly number[],
    readonly dtype: D,
    /** Gradients flow to this tensor (parameters, or anything computed from them). */
    public requiresGrad = false,
    /** Name used in error messages and checkpoints. */
    public name = '',
  ) {
    this.size = shapeSize(shape);
    this.storage = storage;
    track(this);
  }

  get disposed(): boolean {
    return this.storage === null && this.packed === null;
  }

  /** Held as a float16 copy (see `packFloat16`). */
  get isPacked(): boolean {
    return this.packed !== null;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The backend buffer; throws once disposed. A packed tensor is expanded to float32 until `releaseUnpacked()`. */
  buffer<B = unknown>(): B {
    if (this.storage === null) {
      if (this.packed === null) throw new DisposedError(`tensor ${this.describe()} was used after it was disposed`);
      const expanded = this.backend.alloc(this.size, 'float32', { label: this.name });
      this.backend.kernels.fromFloat16(this.packed, expanded, this.size);
      this.storage = expanded;
      unpacked.push(this);
    }
    return this.storage as B;
  }

  /**
   * Replaces the float32 storage by a float16 copy at half the bytes (later reads see rounded values), for
   * activations only the backward pass reads again. False, doing nothing, where that cannot apply.
   */
  packFloat16(): boolean {
    if (this.storage === null || this.packed !== null || this.dtype !== 'float32' || !this.backend.capabilities.float16) return false;
    const half = this.backend.alloc(this.size, 'float16', { label: `${this.name || `#${this.id}`} (float16)` });
    this.backend.kernels.toFloat16(this.storage, half, this.size);
    this.backend.free(this.storage);
    this.storage = null;
    this.packed = half;
    return true;
  }

  /** Drops the float32 copy of a packed tensor that `buffer()` expanded (the float16 one stays). */
  repack(): void {
    if (this.packed === null || this.storage === null) return;
    this.backend.free(this.storage);
    this.storage = null;
  }

  /** Releases the storage and the gradient. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    if (this.storage !== null) this.backend.free(this.storage);
    if (this.packed !== null) this.backend.free(this.packed);
    this.storage = null;
    this.packed = null;
    this.node = null;
    this.grad?.dispose();
    this.grad = null;
  }

  /** Reads the values back to the host: an Int32Array for int32, a Float32Array otherwise. */
  async data(): Promise<HostArrayOf<D>> {
    return await this.backend.read(this.buffer(), this.dtype, this.size) as HostArrayOf<D>;
  }

  /** Reads a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item() needs a single element, ${this.describe()} has ${this.size}`);
    return (await this.data())[0];
  }

  describe(): string {
    return `${this.name ? `"${this.name}" ` : ''}#${this.id} [${this.shape.join(', ')}] ${this.dtype}`;
  }
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

interface TensorOptions<D extends DType> { dtype?: D; requiresGrad?: boolean; name?: string }

/** Creates a tensor holding host data; its dtype is `options.dtype`, else int32 for an Int32Array, else float32. */
export function tensor<D extends DType>(backend: Backend, data: HostArray | readonly number[], shape: readonly number[],
  options: TensorOptions<D> & { dtype: D }): Tensor<D>;
export function tensor(backend: Backend, data: Int32Array, shape: readonly number[], options?: TensorOptions<never>): Tensor<'int32'>;
export function tensor(backend: Backend, data: Float32Array | readonly number[], shape: readonly number[], options?: TensorOptions<never>): Tensor<'float32'>;
export function tensor(backend: Backend, data: HostArray | readonly number[], shape: readonly number[],
  options?: TensorOptions<DType>): Tensor;
export function tensor(backend: Backend, data: HostArray | readonly number[], shape: readonly number[],
  options: TensorOptions<DType> = {}): Tensor {
  const dtype = options.dtype ?? (data instanceof Int32Array ? 'int32' : 'float32');
  const size = shapeSize(shape);
  if (data.length !== size) {
    throw new ShapeError(`${options.name ?? 'tensor'}: ${data.length} values do not fill shape [${shape.join(', ')}] (${size})`);
  }
  const host = data instanceof Float32Array || data instanceof Int32Array
    ? data
    : dtype === 'int32' ? Int32Array.from(data) : Float32Array.from(data);
  if ((dtype === 'int32') !== (host instanceof Int32Array)) {
    throw new ShapeError(`${options.name ?? 'tensor'}: dtype ${dtype} does not match ${host.constructor.name} data`);
  }
  const buffer = backend.alloc(size, dtype, { label: options.name });
  backend.write(buffer, host);
  return new Tensor(backend, buffer, shape, dtype, options.requiresGrad ?? false, options.name ?? '');
}

/** Allocates a tensor of the given shape; contents are undefined until a kernel writes them. */
export function empty<D extends DType = 'float32'>(backend: Backend, shape: readonly number[], dtype: D = 'float32' as D, name = ''): Tensor<D> {
  const buffer = backend.alloc(shapeSize(shape), dtype, { label: name });
  return new Tensor(backend, buffer, shape, dtype, false, name);
}

export function full(backend: Backend, shape: readonly number[], value: number, name = ''): Tensor<'float32'> {
  const t = empty(backend, shape, 'float32', name);
  backend.kernels.fill(t.buffer(), t.size, value);
  return t;
}

export function zeros(backend: Backend, shape: readonly number[], name = ''): Tensor {
  return full(backend, shape, 0, name);
}

// ---------------------------------------------------------------------------------------------
// Packed activations: tensors expanded from float16 since the last releaseUnpacked().

const unpacked: Tensor[] = [];

/** Drops the float32 copies that reads of packed tensors made (the tape calls it after each backward rule). */
export function releaseUnpacked(): void {
  for (const t of unpacked.splice(0)) t.repack();
}

const packScopes: Set<Tensor>[] = [];

/**
 * Runs `fn` and packs to float16 every tensor of rank 2 or more it created, except those in its result
 * (they move to the enclosing packing scope). Rank 1 (batch statistics, scalars) stays float32: only
 * activations carry a batch dimension.
 */
export function packingScope<T extends TensorContainer>(fn: () => T): T {
  const { result, created, survivors } = scoped(packScopes, fn);
  const outer = packScopes[packScopes.length - 1];
  for (const t of created) {
    if (survivors.has(t)) outer?.add(t);
    else if (t.rank >= 2) t.packFloat16();
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Scoped lifetime: every tensor made inside tidy() is disposed at its end unless returned or kept.

const scopes: Set<Tensor>[] = [];

function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
  packScopes[packScopes.length - 1]?.add(t);
}

/** Removes a tensor from the current scopes, so tidy() will not dispose it (nor packingScope pack it). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  for (const s of packScopes) s.delete(t);
  return t;
}

type TensorContainer = Tensor | readonly TensorContainer[] | { readonly [k: string]: TensorContainer } | number | string | boolean | null | undefined | void;

/** The tensors a result holds (in arrays and plain objects, as tidy's result may). */
function survivorsOf(value: unknown, out = new Set<Tensor>()): Set<Tensor> {
  if (value instanceof Tensor) out.add(value);
  else if (Array.isArray(value)) for (const v of value) survivorsOf(v, out);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) survivorsOf(v, out);
  }
  return out;
}

/** Disposes the tensors a scope created, except its survivors, which move to the enclosing scope. */
function closeScope(created: Set<Tensor>, survivors: Set<Tensor>): void {
  for (const t of created) {
    if (survivors.has(t)) track(t);
    else t.dispose();
  }
}

/** Runs `fn` with a new scope on `stack`: its result, the tensors made meanwhile, and those the result holds. */
function scoped<T>(stack: Set<Tensor>[], fn: () => T): { result: T; created: Set<Tensor>; survivors: Set<Tensor> } {
  const created = new Set<Tensor>();
  stack.push(created);
  let result: T;
  try {
    result = fn();
  } finally {
    stack.pop();
  }
  return { result, created, survivors: survivorsOf(result) };
}

/**
 * Runs `fn` and disposes every tensor it created, except the tensors in its result (which move to
 * the enclosing scope). Synchronous on purpose: kernels are enqueued, never awaited, inside a step.
 */
export function tidy<T extends TensorContainer>(fn: () => T): T {
  const { result, created, survivors } = scoped(scopes, fn);
  closeScope(created, survivors);
  return result;
}

/**
 * `tidy` for steps that wait on the host midway (a sharded head combining per-shard statistics). Tensors
 * created while `fn` runs, across its awaits, belong to this scope; two interleaved at once are not supported.
 */
export async function tidyAsync<T extends TensorContainer>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = await fn();
  } finally {
    const at = scopes.lastIndexOf(scope);
    if (at >= 0) scopes.splice(at, 1);
  }
  closeScope(scope, survivorsOf(result));
  return result;
}

/** Throws a ShapeError unless the shapes are equal. */
export function assertShape(t: Tensor, shape: readonly number[], what: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${what}: expected shape [${shape.join(', ')}], got ${t.describe()}`);
  }
}

/** Throws a ShapeError unless the dtype is `dtype`; afterwards the tensor is typed as holding it. */
export function assertDType<D extends DType>(t: Tensor, dtype: D, what: string): asserts t is Tensor<D> {
  if (t.dtype !== dtype) throw new ShapeError(`${what}: expected dtype ${dtype}, got ${t.describe()}`);
}

export function assertSameBackend(tensors: readonly Tensor[], what: string): void {
  const b = tensors[0]?.backend;
  for (const t of tensors) {
    if (t.backend !== b) throw new ShapeError(`${what}: tensors live on different backends (${b?.name} and ${t.backend.name})`);
  }
}
