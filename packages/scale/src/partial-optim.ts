/**
 * SGD for a sharded head with Partial FC: only the rows sampled since the last `zeroGrad` are
 * updated, and only their momentum moves (the row-sparse update of insightface's first Partial FC,
 * which kept the momentum of the sampled rows apart). A plain `sgd` over the full weights would
 * also decay and move every unsampled row through its momentum buffer.
 */
import { empty, type NamedTensor, type Optimizer, type SgdOptions, type Tensor, ConfigError } from '@fr/core';
import type { ShardedHead } from './sharded-head.js';

function zerosLike(t: Tensor, name: string): Tensor {
  const z = empty(t.backend, t.shape, 'float32', name);
  t.backend.kernels.fill(z.buffer(), z.size, 0);
  return z;
}

/**
 * dst[index[i]] = src[i] bit for bit, with the kernels of the table: the rows are first cleared by
 * adding their own negation (x + (-x) is exactly +0 for finite x), then the new rows are added.
 */
function assignRows(dst: Tensor, src: Tensor, index: Tensor, count: number, cols: number): void {
  const k = dst.backend.kernels;
  const old = empty(dst.backend, [count, cols]);
  try {
    k.gatherRows(dst.buffer(), index.buffer(), old.buffer(), count, cols);
    k.affine(old.buffer(), old.buffer(), count * cols, -1, 0);
    k.scatterAddRows(old.buffer(), index.buffer(), dst.buffer(), count, cols);
    k.scatterAddRows(src.buffer(), index.buffer(), dst.buffer(), count, cols);
  } finally {
    old.dispose();
  }
}

/** SGD (torch semantics per row) over a sharded head's parameters, row-sparse under Partial FC. */
export function partialFcSgd(head: ShardedHead, o: SgdOptions = {}): Optimizer {
  const momentum = o.momentum ?? 0;
  const nesterov = o.nesterov ?? false;
  if (nesterov && (momentum <= 0 || (o.dampening ?? 0) !== 0)) throw new ConfigError('partialFcSgd: nesterov needs momentum > 0 and zero dampening');
  const params: readonly NamedTensor[] = head.parameters;
  const buffers = params.map((p) => zerosLike(p.tensor, `optim.${p.name}.momentum`));
  const shardOf = new Map(head.shards.map((s, i) => [s.weight, i]));
  let steps = 0;
  return {
    get steps() { return steps; },
    setSteps(s) { steps = s; },
    step(lr) {
      params.forEach((p, i) => {
        const w = p.tensor;
        const g = w.grad;
        if (!g) return;
        const k = w.backend.kernels;
        const sgdParams = {
          lr,
          momentum,
          dampening: steps === 0 ? 0 : o.dampening ?? 0,
          weightDecay: o.weightDecay ?? 0,
          nesterov,
        };
        const shard = shardOf.has(w) ? head.shards[shardOf.get(w)!] : null;
        const sampled = shard?.sampled ?? null;
        if (!sampled) {
          k.sgdStep(w.buffer(), g.buffer(), buffers[i].buffer(), { n: w.size, ...sgdParams });
          return;
        }
        const cols = w.shape[1];
        const count = sampled.length;
        const b = w.backend;
        const index = empty(b, [count], 'int32', `${p.name}.sampleIndex`);
        const rows = [empty(b, [count, cols]), empty(b, [count, cols]), empty(b, [count, cols])];
        try {
          b.write(index.buffer(), sampled);
          const [wr, gr, mr] = rows;
          k.gatherRows(w.buffer(), index.buffer(), wr.buffer(), count, cols);
          k.gatherRows(g.buffer(), index.buffer(), gr.buffer(), count, cols);
          k.gatherRows(buffers[i].buffer(), index.buffer(), mr.buffer(), count, cols);
          k.sgdStep(wr.buffer(), gr.buffer(), mr.buffer(), { n: count * cols, ...sgdParams });
          assignRows(w, wr, index, count, cols);
          assignRows(buffers[i], mr, index, count, cols);
        } finally {
          index.dispose();
          for (const t of rows) t.dispose();
        }
      });
      steps++;
    },
    zeroGrad() {
      for (const p of params) {
        p.tensor.grad?.dispose();
        p.tensor.grad = null;
      }
      head.clearSampled();
    },
    state: () => params.map((_p, i) => ({ name: buffers[i].name, tensor: buffers[i] })),
    dispose() {
      for (const b of buffers) b.dispose();
    },
  };
}
