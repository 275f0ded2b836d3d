// Runs in Chromium on the wasm backend, at 1 and then 2 threads: every loss package's golden cases
// (fetched from the test server, as the packages ship them in test/fixtures) through the shared
// loss conformance runner, then finite-difference checks of the exact gradient rules.
import { adaface } from '@fr/adaface';
import { arcface } from '@fr/arcface';
import { createWasmBackend } from '@fr/backend-wasm';
import type { Loss } from '@fr/core';
import { formatLossConformance, lossGradCheck, runLossConformance, type LossGradCheckOptions } from '@fr/core/testing';
import { cosface } from '@fr/cosface';
import { curricularface } from '@fr/curricularface';
import { elasticface } from '@fr/elasticface';
import { magface } from '@fr/magface';
import { multiface } from '@fr/multiface';
import { l2softmax, normface, softmax } from '@fr/softmax';
import { sphereface } from '@fr/sphereface';
import { sphereface2 } from '@fr/sphereface2';
import { subcenterArcface } from '@fr/subcenter-arcface';
import { x2softmax } from '@fr/x2softmax';

const losses = [adaface, arcface, cosface, curricularface, elasticface, magface, multiface, softmax, l2softmax, normface, sphereface, sphereface2, subcenterArcface, x2softmax];

type GradCase = [string, Loss<any>, Omit<LossGradCheckOptions<unknown>, 'backend'>];
const small = { batch: 3, dim: 5, classes: 4 };
/** The exact gradient rules, with the settings of each package's own finite-difference test. */
const gradCases: GradCase[] = [
  ['arcface exact', arcface, { params: { gradient: 'exact', s: 8, m: 0.5 }, batch: 3, dim: 6, classes: 4, seed: 4 }],
  ['cosface', cosface, { params: { s: 8 }, ...small, seed: 2 }],
  ['softmax', softmax, { params: {}, ...small, seed: 8 }],
  ['softmax with bias', softmax, { params: { bias: true }, ...small, seed: 8 }],
  ['l2softmax', l2softmax, { params: { alpha: 4 }, ...small, seed: 8 }],
  ['normface', normface, { params: { s: 8 }, ...small, seed: 8 }],
  ['multiface softmax x4', multiface, { params: { base: 'softmax', parts: 4, s: 6 }, batch: 3, dim: 12, classes: 4, seed: 5 }],
  ['multiface cosface x2', multiface, { params: { base: 'cosface', parts: 2, s: 6 }, batch: 3, dim: 12, classes: 4, seed: 5 }],
  ['multiface arcface x3', multiface, { params: { base: 'arcface', parts: 3, s: 6 }, batch: 3, dim: 12, classes: 4, seed: 5 }],
  ['subcenter-arcface official k3', subcenterArcface, { params: { s: 8, k: 3 }, subCenters: 3, batch: 4, dim: 5, classes: 3, seed: 7 }],
  ['elasticface arcface, given margins', elasticface, { params: { base: 'arcface', s: 8 }, batch: 3, dim: 5, classes: 4, seed: 5, inputs: { margins: Float32Array.of(0.3, 0.55, 0.45) } }],
  // gamma 0 keeps lambda fixed across the evaluations of the check.
  ['sphereface a-softmax (weights)', sphereface, { params: { variant: 'a-softmax', base: 0.5, gamma: 0, lambdaMin: 0 }, ...small, seed: 6, wrt: ['weights'] }],
];

interface Run {
  requested: number;
  threads: number;
  simd: boolean;
  /** Golden cases run, by loss package. */
  goldenCases: Record<string, number>;
  gradChecks: number;
  failed: string[];
  ms: number;
}

async function main() {
  const fixtures = (await (await fetch('/fixtures/losses.json')).json()) as Record<string, Record<string, unknown>>;
  const runs: Run[] = [];
  for (const requested of [1, 2]) {
    const start = performance.now();
    const backend = await createWasmBackend({ threads: requested });
    const caps = backend.capabilities as unknown as { threads: number; simd: boolean };
    const failed: string[] = [];
    const goldenCases: Record<string, number> = {};
    for (const [pkg, cases] of Object.entries(fixtures)) {
      const results = await runLossConformance(Object.values(cases), { losses, backend });
      goldenCases[pkg] = results.length;
      for (const r of results) if (!r.pass) failed.push(formatLossConformance([r]).split('\n')[0]);
    }
    for (const [name, loss, o] of gradCases) {
      const r = await lossGradCheck(loss, { ...o, backend });
      if (!r.passed || r.checks.length === 0) failed.push(`gradient check ${name}: ${JSON.stringify(r.checks)}`);
    }
    backend.dispose();
    runs.push({ requested, threads: caps.threads, simd: caps.simd, goldenCases, gradChecks: gradCases.length, failed, ms: Math.round(performance.now() - start) });
  }
  return { isolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? false, runs };
}

(window as unknown as { frResults: Promise<unknown> }).frResults = main().catch((e: unknown) => ({ error: String((e as Error)?.stack ?? e) }));
