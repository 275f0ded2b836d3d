/**
 * `pnpm bench`: the benchmarks of the repository, in order: WebGPU matmul, MLP step, loss head,
 * backbones, activation storage, scale head. Each runs in its own try/catch, so one failure is reported and the others still run.
 *
 *   pnpm bench                          the default run (about 15-20 minutes on 2 cores, SwiftShader)
 *   pnpm bench -- --only head,backbone  a subset: matmul, mlp, head, backbone, activations, scale, cpu
 *   pnpm bench -- --quick               small shapes, a fast check that everything runs
 *   pnpm bench -- --only cpu --insightface <dir>   PyTorch's MobileFaceNet beside ours (also FR_INSIGHTFACE)
 */
import { parseArgs } from 'node:util';
import { run as runMatmul } from '../packages/backend-webgpu/bench/matmul.bench.js';
import { run as runScaleHead } from '../packages/scale/bench/head.bench.js';
import { run as runActivations } from '../apps/bench/src/activations.bench.js';
import { run as runBackbone } from '../apps/bench/src/backbone.bench.js';
import { run as runCpu } from '../apps/bench/src/cpu.bench.js';
import { run as runHead } from '../apps/bench/src/head.bench.js';
import { run as runMlp } from '../apps/bench/src/mlp.bench.js';
import { benchPlan, BENCHES, type BenchName } from '../apps/bench/src/plan.js';
import { torchPeerOptions } from '../apps/bench/src/torch-peer.js';

const usage = `pnpm bench [-- --only ${BENCHES.join(',')}] [--quick] [--insightface <dir>] [--torch-python <path>]`;
const options = {
  only: { type: 'string' },
  quick: { type: 'boolean', default: false },
  insightface: { type: 'string' },
  'torch-python': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;
let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options }>>;
try {
  parsed = parseArgs({ args: process.argv.slice(2).filter((a) => a !== '--'), options });
} catch (e) {
  // An unknown flag or a flag without its value: one line naming it, then the usage.
  console.error(`bench: ${(e as Error).message}\nusage: ${usage}`);
  process.exit(2);
}
const { values } = parsed;

if (values.help) {
  console.log(usage);
  process.exit(0);
}

const selected = (values.only ?? BENCHES.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
for (const s of selected) {
  if (!BENCHES.includes(s as BenchName)) {
    console.error(`bench: unknown benchmark "${s}" (choose from ${BENCHES.join(', ')})`);
    process.exit(2);
  }
}
const plan = benchPlan(values.quick);
try {
  plan.cpu.torch = torchPeerOptions({ insightface: values.insightface, torchPython: values['torch-python'] }, process.env);
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(2);
}
console.log(`pnpm bench${values.quick ? ' --quick' : ''}: ${selected.join(', ')} (${new Date().toISOString()})`);
for (const line of plan.explanation) console.log(`  ${line}`);

const results: { name: string; ok: boolean; seconds: number; error?: string }[] = [];
const started = performance.now();
for (const name of BENCHES) {
  if (!selected.includes(name)) continue;
  console.log(`\n== ${name} ==`);
  const t0 = performance.now();
  try {
    switch (name) {
      case 'matmul': {
        const rows = await runMatmul(plan.matmul);
        console.log('| shape | ours ms | tfjs ms | tfjs/ours | ours GFLOP/s |\n|---|---:|---:|---:|---:|');
        for (const r of rows) console.log(`| ${r.shape} | ${r.oursMs.toFixed(1)} | ${r.tfjsMs.toFixed(1)} | ${r.ratio.toFixed(2)} | ${r.oursGflops.toFixed(2)} |`);
        break;
      }
      case 'mlp':
        await runMlp(plan.mlp);
        break;
      case 'head':
        await runHead(plan.head);
        break;
      case 'backbone':
        await runBackbone(plan.backbone);
        break;
      case 'cpu':
        await runCpu(plan.cpu);
        break;
      case 'activations':
        await runActivations(plan.activations);
        break;
      case 'scale':
        if (plan.scale === null) console.log('skipped in --quick (its shapes are fixed: C = 100,000 and 1,000,000); select it with --only scale');
        else await runScaleHead(plan.scale);
        break;
    }
    results.push({ name, ok: true, seconds: (performance.now() - t0) / 1000 });
  } catch (e) {
    const error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    console.error(`bench ${name} failed:\n${error}`);
    results.push({ name, ok: false, seconds: (performance.now() - t0) / 1000, error: error.split('\n')[0] });
  }
}

console.log(`\n== summary (${((performance.now() - started) / 60000).toFixed(1)} min) ==`);
for (const r of results) console.log(`  ${r.ok ? 'ok    ' : 'FAILED'} ${r.name.padEnd(9)} ${r.seconds.toFixed(0).padStart(5)} s${r.error ? `  ${r.error}` : ''}`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
