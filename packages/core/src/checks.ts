import { assertDType, assertSameBackend, type Tensor } from './tensor.js';

/** Checks that op inputs are live float32 tensors on one backend (internal to the op modules, not exported by the package). */
export function checkFloat(op: string, ...ts: Tensor[]): void {
  assertSameBackend(ts, op);
  for (const t of ts) {
    t.buffer(); // throws on use after dispose, naming the tensor
    assertDType(t, 'float32', op);
  }
}
