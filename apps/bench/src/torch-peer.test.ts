/**
 * The PyTorch peer without PyTorch: flags and environment, the "not run" lines, the checks of the
 * script's output, and the whole path (spawn, environment, data files, tables) against a stand-in
 * interpreter written here, which answers as torch_peer.py does and records what it was given.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run as runCpu } from './cpu.bench.js';
import { problem } from './head.bench.js';
import { arcfaceHeadPeer, torchPeerStart } from './torch-peer-rows.js';
import type { HeadRow } from './head.bench.js';
import {
  MOBILEFACENET_FILE, parseBackboneOutput, parseHeadOutput, parseMatmulOutput, torchAvailability, torchEnv, torchMobileFaceNet, torchPeerOptions,
} from './torch-peer.js';

const dir = mkdtempSync(join(tmpdir(), 'fr-torch-peer-test-'));
const checkout = join(dir, 'insightface');
mkdirSync(join(checkout, MOBILEFACENET_FILE, '..'), { recursive: true });
writeFileSync(join(checkout, MOBILEFACENET_FILE), '# stand-in\n');

interface Fake { torch: boolean; headLoss?: number; raw?: string }

/** An executable that answers like Debian's python3 running torch_peer.py; it records its last call in `<path>.call.json`. */
function fakePython(name: string, f: Fake): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/usr/bin/env node
const fs = require('node:fs');
const f = ${JSON.stringify(f)};
const [first, second] = process.argv.slice(2);
if (first === '-c') {
  if (!f.torch) { console.error("Traceback (most recent call last):\\nModuleNotFoundError: No module named 'torch'"); process.exit(1); }
  console.log('1.13.0-stand-in');
  process.exit(0);
}
const spec = JSON.parse(second);
const files = spec.data ? Object.fromEntries(fs.readdirSync(spec.data).map((n) => [n, fs.statSync(spec.data + '/' + n).size])) : null;
fs.writeFileSync(${JSON.stringify(`${path}.call.json`)}, JSON.stringify({ script: first, spec, files, coretype: process.env.OPENBLAS_CORETYPE ?? null, l2: process.env.OPENBLAS_L2_SIZE ?? null, trim: process.env.MALLOC_TRIM_THRESHOLD_ ?? null }));
if (f.raw !== undefined) { console.log(f.raw); process.exit(0); }
const env = { torch: '1.13.0-stand-in', python: '3.11.2', executable: process.argv[1], threads: spec.threads, blas: null, blasThreads: null, mallocMmapThreshold: process.env.MALLOC_MMAP_THRESHOLD_ ?? null };
const result = {
  head: () => ({ ms: 40, loss: f.headLoss }),
  mobilefacenet: () => ({ rows: spec.batches.map((b) => ({ batch: b, ms: 100 * b, loss: -1.5 })), parameters: 2059520 }),
  matmul: () => ({ rows: spec.shapes.map((s) => ({ name: s.name, ms1: 2 * s.m * s.n * s.k / 1e8, msN: s.m * s.n * s.k / 1e8 })) }),
}[spec.workload]();
console.log('a line before the result');
console.log(JSON.stringify({ workload: spec.workload, env, ...result }));
`);
  chmodSync(path, 0o755);
  return path;
}
const lastCall = (python: string) => JSON.parse(readFileSync(`${python}.call.json`, 'utf8'));

describe('PyTorch peer options', () => {
  it('Debian\'s python3 and no checkout by default; the flag wins over FR_INSIGHTFACE', () => {
    expect(torchPeerOptions({}, {})).toEqual({ python: '/usr/bin/python3', insightface: null });
    expect(torchPeerOptions({}, { FR_INSIGHTFACE: checkout }).insightface).toBe(checkout);
    expect(torchPeerOptions({ insightface: checkout }, { FR_INSIGHTFACE: '/nowhere' }).insightface).toBe(checkout);
  });

  it('a given but unusable value is an error naming the flag or the variable', () => {
    expect(() => torchPeerOptions({ insightface: '' }, {})).toThrow('--insightface: empty');
    expect(() => torchPeerOptions({ insightface: '/nowhere' }, {})).toThrow('--insightface: "/nowhere" is not a directory');
    expect(() => torchPeerOptions({}, { FR_INSIGHTFACE: dir })).toThrow(`FR_INSIGHTFACE: "${dir}" has no ${MOBILEFACENET_FILE}`);
    expect(() => torchPeerOptions({ torchPython: '/nowhere/python3' }, {})).toThrow('--torch-python: "/nowhere/python3" is not a file');
  });

  it('PyTorch runs without the machine\'s OpenBLAS overrides and with glibc keeping freed memory', () => {
    const env = torchEnv({ OPENBLAS_CORETYPE: 'Haswell', OPENBLAS_L2_SIZE: '512', HOME: '/root' });
    expect(env).toEqual({ HOME: '/root', MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_TRIM_THRESHOLD_: '100000000000' });
  });
});

describe('PyTorch peer availability', () => {
  it('no interpreter or no torch: one line naming every PyTorch row and the reason, nothing runs', () => {
    const missing = torchAvailability({ python: join(dir, 'no-python'), insightface: checkout });
    expect(missing.workloads).toEqual([]);
    expect(missing.notRun).toMatch(/^PyTorch peer not run \(head, MobileFaceNet, matmul rows\): .*no-python could not be run \(ENOENT\)/);
    const noTorch = torchAvailability({ python: fakePython('no-torch', { torch: false }), insightface: checkout });
    expect(noTorch.workloads).toEqual([]);
    expect(noTorch.notRun).toContain("has no torch (ModuleNotFoundError: No module named 'torch')");
    expect(noTorch.notRun).toContain('apt-get install -y python3-torch libopenblas0-pthread');
  });

  it('torch without a checkout: the head and matmul run, the MobileFaceNet rows are said not to', async () => {
    const lines: string[] = [];
    const peer = await torchPeerStart({ python: fakePython('torch', { torch: true }), insightface: null }, (l) => void lines.push(l));
    expect(peer.availability.workloads).toEqual(['head', 'matmul']);
    expect(lines).toEqual([
      expect.stringContaining('PyTorch peer: torch 1.13.0-stand-in'),
      'PyTorch peer: MobileFaceNet rows not run: no insightface checkout given (--insightface <dir> or FR_INSIGHTFACE)',
    ]);
    expect(await peer.mobilefacenet([8], 112)).toBeNull();
    const off: string[] = [];
    await torchPeerStart(null, (l) => void off.push(l));
    expect(off).toEqual(['PyTorch peer not run (head, MobileFaceNet, matmul rows): disabled by the caller (torch: null)']);
  });
});

describe('PyTorch peer output', () => {
  const env = { torch: '1.13.0a0', python: '3.11.2', executable: '/usr/bin/python3', threads: 2, blas: '/usr/lib/libopenblasp.so', blasThreads: 2, mallocMmapThreshold: '33554432' };
  const head = (o: object) => JSON.stringify({ workload: 'head', env, ms: 45.2, loss: 43.74, ...o });

  it('reads the last line and checks every field', () => {
    expect(parseHeadOutput(`warning\n${head({})}\n`)).toEqual({ env, ms: 45.2, loss: 43.74 });
    const mbf = { workload: 'mobilefacenet', env, rows: [{ batch: 8, ms: 240, loss: -3 }, { batch: 32, ms: 1500, loss: 2 }], parameters: 2059520 };
    expect(parseBackboneOutput(JSON.stringify(mbf), [8, 32]).rows.map((r) => r.ms)).toEqual([240, 1500]);
    const mm = { workload: 'matmul', env, rows: [{ name: '256^3', ms1: 0.3, msN: 0.2 }] };
    expect(parseMatmulOutput(JSON.stringify(mm), ['256^3']).rows[0]).toEqual({ name: '256^3', ms1: 0.3, msN: 0.2 });
  });

  it('bad output is an error naming the field', () => {
    const what = 'PyTorch peer (head) output';
    expect(() => parseHeadOutput('Segmentation fault')).toThrow(`${what}: not JSON: "Segmentation fault"`);
    expect(() => parseHeadOutput(head({ ms: -1 }))).toThrow(`${what}: field "ms" is not a positive number (got -1)`);
    expect(() => parseHeadOutput(head({ loss: null }))).toThrow(`${what}: field "loss" is not a finite number (got null)`);
    expect(() => parseHeadOutput(head({ extra: 1 }))).toThrow(`${what}: field "extra" is unknown (got 1)`);
    expect(() => parseHeadOutput(head({ env: { ...env, threads: undefined } }))).toThrow(`${what}: field "env.threads" is missing`);
    expect(() => parseHeadOutput(head({ workload: 'matmul' }))).toThrow(`${what}: field "workload" is not "head"`);
    const mbf = { workload: 'mobilefacenet', env, rows: [{ batch: 16, ms: 240, loss: 0 }], parameters: 1 };
    expect(() => parseBackboneOutput(JSON.stringify(mbf), [8])).toThrow('field "rows.0.batch" is not 8 (got 16)');
    expect(() => parseBackboneOutput(JSON.stringify(mbf), [8, 32])).toThrow('field "rows" is not an array of 2');
  });
});

describe('PyTorch peer runs', () => {
  const ours = (loss: number) => ({ oursMs: 80, oursLoss: loss }) as HeadRow;

  it('the head gets our x, W and labels as files, and its row sits beside ours with both losses', async () => {
    const python = fakePython('head', { torch: true, headLoss: 43.742 });
    const lines: string[] = [];
    const peer = await torchPeerStart({ python, insightface: null, threads: 2 }, (l) => void lines.push(l));
    const p = problem(4, 8, 50);
    const r = await arcfaceHeadPeer(peer, ours(43.742), p, 2, (l) => void lines.push(l));
    expect(r!.ms).toBe(40);
    const call = lastCall(python);
    expect(call.script).toMatch(/torch_peer\.py$/);
    expect(call.spec).toMatchObject({ workload: 'head', threads: 2, warmups: 3, steps: 20, batch: 4, dim: 8, classes: 50, s: 64, m: 0.5 });
    expect(call.files).toEqual({ 'labels.i32': 4 * 4, 'w.f32': 50 * 8 * 4, 'x.f32': 4 * 8 * 4 });
    expect([call.coretype, call.l2, call.trim]).toEqual([null, null, '100000000000']);
    expect(lines).toContain('| ArcFace head | 80.0 | 40.0 | 2.00 | 43.7420 / 43.7420 |');
    expect(lines.some((l) => l.includes('MALLOC_MMAP_THRESHOLD_=33554432'))).toBe(true);
    // A different loss means a different step: marked in the row.
    const other: string[] = [];
    await arcfaceHeadPeer(peer, ours(40), p, 2, (l) => void other.push(l));
    expect(other.at(-1)).toContain('MISMATCH');
  });

  it('MobileFaceNet gets the checkout and the batches; a failing or garbled script is a clear error', async () => {
    const python = fakePython('mbf', { torch: true });
    const r = await torchMobileFaceNet({ python, insightface: checkout, threads: 2, mobilefacenet: { warmups: 0, steps: 1 } }, [8, 32], 112, 512);
    expect(r.rows).toEqual([{ batch: 8, ms: 800, loss: -1.5 }, { batch: 32, ms: 3200, loss: -1.5 }]);
    expect(lastCall(python).spec).toEqual({ workload: 'mobilefacenet', threads: 2, warmups: 0, steps: 1, batches: [8, 32], size: 112, embedding: 512, insightface: checkout });
    const garbled = fakePython('garbled', { torch: true, raw: '{"workload": "mobilefacenet"' });
    await expect(torchMobileFaceNet({ python: garbled, insightface: checkout }, [8], 112, 512)).rejects.toThrow('PyTorch peer (mobilefacenet) output: not JSON');
    await expect(torchMobileFaceNet({ python: '/bin/false', insightface: checkout }, [8], 112, 512)).rejects.toThrow(/PyTorch peer \(mobilefacenet\): \/bin\/false .*torch_peer\.py failed \(exit 1\)/);
  });

  it('the cpu bench prints PyTorch\'s matmul columns beside ours', async () => {
    const lines: string[] = [];
    const python = fakePython('cpu', { torch: true });
    await runCpu({
      matmuls: [['64^3', 64, 64, 64, false]], convs: [], steps: null, policy: { budgetMs: 0, minReps: 0, maxReps: 0 },
      torch: { python, insightface: null, threads: 2 }, log: (l) => void lines.push(l),
    });
    const header = lines.find((l) => l.startsWith('| kernel'))!;
    expect(header).toContain('| PyTorch 1 thread | PyTorch 2 threads |');
    // 2 x 64^3 flops in 2 x 64^3 / 1e8 ms (stand-in) at 1 thread: 100 GFLOP/s; 200 at 2.
    expect(lines.find((l) => l.startsWith('| matmul 64^3'))!.split('|').map((c) => c.trim()).slice(6, 8)).toEqual(['100.0', '200.0']);
  }, 60_000);
});
