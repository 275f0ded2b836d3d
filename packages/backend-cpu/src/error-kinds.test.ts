import { describe, expect, expectTypeOf, test } from 'vitest';
import {
  BackendError, ConfigError, DataError, decodeSafetensors, defineLoss, defineTransform, dropout, empty, encodeSafetensors, FormatError,
  FrError, matmul, parseLossParams, sgd, ShapeError, tensor, validateLabels, z, type Tensor,
} from '@fr/core';

import { createCpuBackend } from './index.js';

const backend = createCpuBackend();
const arc = defineLoss({
  name: 'arc', description: '', params: z.object({ s: z.number().positive().default(64) }),
  createHead: () => { throw new Error('unused'); },
});

/** The error `fn` throws, checked to be of `kind` and of the shared base class. */
function thrown(fn: () => unknown, kind: abstract new (...args: never[]) => Error): Error {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(kind);
  expect(error).toBeInstanceOf(FrError);
  return error as Error;
}

describe('errors by kind', () => {
  test('a configuration error: unknown key, bad parameter, bad option, bad plugin definition', () => {
    expect(thrown(() => parseLossParams(arc, { margin: 0.5 }), ConfigError).message).toMatch(/unknown parameter margin; valid: s/);
    expect(thrown(() => parseLossParams(arc, { s: -1 }), ConfigError).message).toMatch(/arc params: s: /);
    thrown(() => sgd([], { momentum: 0, nesterov: true }), ConfigError);
    thrown(() => dropout(empty(backend, [2, 2]), 2, 0, true), ConfigError);
    thrown(() => defineLoss({ ...arc, name: 'Arc Face' }), ConfigError);
    const bad = { key: 'bad', uniforms: { 'not-wgsl': 1 }, target: () => 0, targetGrad: () => 0, other: () => 0, otherGrad: () => 0, wgsl: '' };
    thrown(() => defineTransform(bad), ConfigError);
  });

  test('a shape error: tensors that do not fit an op', () => {
    const a = tensor(backend, new Float32Array(6), [2, 3]);
    expect(thrown(() => matmul(a, a), ShapeError).message).toMatch(/inner dimensions differ/);
    thrown(() => tensor(backend, [1, 2, 3], [2, 2]), ShapeError);
    a.dispose();
  });

  test('a data error: a label out of range, a corrupt file (FormatError is a DataError)', () => {
    expect(thrown(() => validateLabels(Int32Array.of(0, 7), 2, 4, 'batch'), DataError).message).toMatch(/label 7 at row 1/);
    const bytes = encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } });
    const error = thrown(() => decodeSafetensors(bytes.subarray(0, bytes.length - 3), 'model.safetensors'), FormatError);
    expect(error).toBeInstanceOf(DataError);
    expect(error.message).toMatch(/model\.safetensors/);
  });

  test('a backend error: a refused allocation, a backend used after dispose', () => {
    const small = createCpuBackend({ maxBufferSize: 64 });
    thrown(() => empty(small, [100]), BackendError);
    small.dispose();
    thrown(() => small.alloc(4, 'float32'), BackendError);
  });
});

describe('data() is typed by the dtype', () => {
  test('int32 and float32 tensors read back as Int32Array and Float32Array', async () => {
    const labels = tensor(backend, Int32Array.of(1, 2), [2]);
    const scores = tensor(backend, [0.5, 1.5], [2]);
    const named = tensor(backend, [3, 4], [2], { dtype: 'int32' });
    const unknown: Tensor = scores;
    expectTypeOf(labels.data).returns.resolves.toEqualTypeOf<Int32Array>();
    expectTypeOf(scores.data).returns.resolves.toEqualTypeOf<Float32Array>();
    expectTypeOf(named.data).returns.resolves.toEqualTypeOf<Int32Array>();
    expectTypeOf(empty(backend, [1], 'float16').data).returns.resolves.toEqualTypeOf<Float32Array>();
    expectTypeOf(unknown.data).returns.resolves.toEqualTypeOf<Float32Array | Int32Array>();
    expect(await labels.data()).toEqual(Int32Array.of(1, 2));
    expect(await scores.data()).toEqual(Float32Array.of(0.5, 1.5));
    expect(await named.data()).toEqual(Int32Array.of(3, 4));
    for (const t of [labels, scores, named]) t.dispose();
  });
});
