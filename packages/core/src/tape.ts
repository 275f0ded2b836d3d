import { ShapeError } from './errors.js';
import { full, keep, releaseUnpacked, Tensor, tidy, type TapeNode } from './tensor.js';

let gradEnabled = true;

/** Runs `fn` without recording ops on the tape (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Attaches a tape node to `output` when any input requires a gradient (ops call it after enqueueing their forward). */
export function record(output: Tensor, op: string, inputs: readonly Tensor[], backward: TapeNode['backward']): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    output.requiresGrad = true;
    output.node = { op, inputs, backward };
  }
  return output;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep backbones would overflow a recursive one.
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const input of t.node?.inputs ?? []) if (input.requiresGrad && !seen.has(input)) stack.push([input, false]);
  }
  return order;
}

/**
 * Back-propagates from a scalar `loss` (or from `loss` with an explicit `gradient`) and adds the
 * result into `.grad` of every leaf that requires a gradient. Intermediate gradients are freed.
 */
export function backward(loss: Tensor, gradient?: Tensor): void {
  if (!loss.requiresGrad) throw new ShapeError(`backward: ${loss.describe()} does not depend on any tensor that requires a gradient`);
  if (!gradient && loss.size !== 1) throw new ShapeError(`backward: ${loss.describe()} is not a scalar; pass its gradient`);
  noGrad(() => tidy(() => {
    const grads = new Map<Tensor, Tensor>();
    // A backward rule may hand the same tensor to two inputs (add does); accumulation writes in
    // place, so every stored gradient must be its own tensor.
    const owned = new Set<Tensor>();
    const own = (g: Tensor): Tensor => {
      const mine = owned.has(g) || g === gradient ? copyOf(g) : g;
      owned.add(mine);
      return mine;
    };
    grads.set(loss, own(gradient ?? full(loss.backend, loss.shape, 1)));
    const order = topoOrder(loss);
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      if (!g) continue;
      if (!t.node) {
        // A leaf: accumulate into .grad, which outlives this scope.
        if (t.grad) t.backend.kernels.axpby(t.grad.buffer(), g.buffer(), t.grad.buffer(), t.size, 1, 1);
        else t.grad = keep(g);
        continue;
      }
      const inputGrads = t.node.backward(g);
      // Packed activations this rule read go back to float16 (their kernels are enqueued already).
      releaseUnpacked();
      t.node.inputs.forEach((input, k) => {
        const ig = inputGrads[k];
        if (!ig || !input.requiresGrad) return;
        const prev = grads.get(input);
        if (prev) input.backend.kernels.axpby(prev.buffer(), ig.buffer(), prev.buffer(), prev.size, 1, 1);
        else grads.set(input, own(ig));
      });
    }
  }));
}

function copyOf(t: Tensor): Tensor {
  const out = new Tensor(t.backend, t.backend.alloc(t.size, t.dtype), t.shape, t.dtype);
  t.backend.kernels.copy(t.buffer(), out.buffer(), t.size, 0, 0);
  return out;
}
