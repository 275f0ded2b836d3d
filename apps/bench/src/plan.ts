/**
 * What `pnpm bench` runs, in default and quick mode, with the reasons for the repetition counts
 * (printed at the start of a run).
 */
import type { ActivationsBenchOptions } from './activations.bench.js';
import type { BackboneBenchOptions } from './backbone.bench.js';
import type { CpuBenchOptions } from './cpu.bench.js';
import type { HeadBenchOptions } from './head.bench.js';
import type { MlpBenchOptions } from './mlp.bench.js';

export const BENCHES = ['matmul', 'mlp', 'head', 'backbone', 'activations', 'scale', 'cpu'] as const;
export type BenchName = (typeof BENCHES)[number];

export interface BenchPlan {
  matmul: { reps?: number; shapes?: [string, number, number, number, boolean][] };
  mlp: MlpBenchOptions;
  head: HeadBenchOptions;
  backbone: BackboneBenchOptions;
  activations: ActivationsBenchOptions;
  /** Options of packages/scale/bench/head.bench.ts; null: not run. */
  scale: { steps?: number; fullBudgetSeconds?: number } | null;
  cpu: CpuBenchOptions;
  explanation: string[];
}

export function benchPlan(quick: boolean): BenchPlan {
  if (quick) {
    return {
      matmul: { reps: 1, shapes: [['square 256', 256, 256, 256, false]] },
      mlp: { shape: { batch: 16, input: 32, hidden: 32, embedding: 16, classes: 50 }, policy: { budgetMs: 500, minReps: 1, maxReps: 3 } },
      head: { classes: [2_000], batch: 32, dim: 64, policy: { budgetMs: 1_000, minReps: 1, maxReps: 3 } },
      backbone: {
        batch: 4, inputSize: { smallnet: 16, mobilefacenet: 16 }, policy: { budgetMs: 1_000, minReps: 0, maxReps: 3 },
      },
      activations: { batch: { smallnet: 4, mobilefacenet: 2 }, inputSize: { smallnet: 16, mobilefacenet: 16 }, policy: { budgetMs: 500, minReps: 1, maxReps: 2 } },
      scale: null,
      cpu: { matmuls: [['128^3', 128, 128, 128, false]], convs: [], steps: null, policy: { budgetMs: 300, minReps: 1, maxReps: 3 } },
      explanation: ['--quick: tiny shapes, at most 3 timed steps per side; the scale head bench is skipped (fixed large shapes)'],
    };
  }
  return {
    matmul: { reps: 3 },
    mlp: { policy: { budgetMs: 5_000, minReps: 1, maxReps: 10 } },
    head: {
      policy: { budgetMs: 8_000, minReps: 1, maxReps: 10 },
      large: { budgetMs: 20_000, minReps: 0, maxReps: 3 },
      largeFrom: 50_000,
      maxStepMs: 60_000,
    },
    backbone: {
      policy: { budgetMs: 15_000, minReps: 1, maxReps: 10 }, maxStepMs: 60_000, probe: { batch: 2, size: 16 },
    },
    activations: { policy: { budgetMs: 10_000, minReps: 1, maxReps: 5 } },
    scale: { steps: 1, fullBudgetSeconds: 0 },
    cpu: {},
    explanation: [
      'matmul: 3 timed runs per shape (its default); a 1024^3 product takes seconds on SwiftShader.',
      'mlp: one training step of the MLP example counted (dispatches, submits, host and kernel bytes), then steps',
      '  timed for 5 s (1..10) per device.',
      'head: C=10,000: timed steps fill 8 s per side (1..10); C=100,000: 20 s (0..3), 0 meaning the warm-up step',
      '  is the figure (its compilation is a small part of a step that long); a configuration whose step is',
      '  predicted (linearly in C from C=10,000) above 60 s is extrapolated, not run, and marked so.',
      'backbone: one step of each side at 2x3x16x16, then one at 2x3x32x32 (shaders compiled by the first), predicts',
      '  the full step (linear in batch x pixels); a side',
      '  predicted above 60 s is not run at full size (its row shows the prediction, marked); otherwise timed steps',
      '  fill 15 s per side (1..10).',
      'activations: smallnet 32x32 at batch 32 and MobileFaceNet 112x112 at batch 2, float32 then float16 activation',
      '  storage; timed steps fill 10 s per side (1..5).',
      'scale: 1 timed step per configuration after a warm-up; the 1M full head is extrapolated from 100k blocks',
      '  (fullBudgetSeconds 0), as that bench allows.',
      'cpu: kernels timed for 3 s per backend (2..200 steps); then the head and backbone benches on the wasm and cpu',
      '  devices (ours against tfjs-backend-wasm and tfjs-backend-cpu); PyTorch beside them when /usr/bin/python3 has',
      '  torch (head: 20 steps after 3 warm-ups; MobileFaceNet, with --insightface: 5 after 2; matmul: 10 after 2).',
    ],
  };
}
