import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { blockModule, extractBlocks, readmeFiles, type Block } from '../src/blocks.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..');
const root = join(pkg, '../..');
// Blocks are written inside this package, so they resolve the workspace packages it depends on.
const out = join(pkg, '.blocks');
const blocks: Block[] = readmeFiles(root).flatMap((f) => extractBlocks(readFileSync(join(root, f), 'utf8'), f));
// The tsx loader by path: blocks run in temporary folders that cannot resolve it by name.
const tsxLoader = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/loader.mjs')).href;
const slug = (b: Block) => `${b.file.replace(/[/.]/g, '_')}_${b.line}.ts`;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const b of blocks) if (b.mode !== 'skip') writeFileSync(join(out, slug(b)), blockModule(b, '../src/givens.js'));
writeFileSync(join(out, 'tsconfig.json'), JSON.stringify({
  extends: '../../../tooling/tsconfig.base.json', compilerOptions: { noEmit: true }, include: ['*.ts'],
}));

/** tsc over every written block at once; its messages by block file. */
function typecheck(): Map<string, string[]> {
  const tsc = join(pkg, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(out, 'tsconfig.json'), '--pretty', 'false'], { encoding: 'utf8' });
  const byFile = new Map<string, string[]>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(?:.*[/\\])?([^/\\(]+\.ts)\(\d+,\d+\): error/.exec(line);
    if (m) byFile.set(m[1]!, [...(byFile.get(m[1]!) ?? []), line]);
  }
  if (r.status !== 0 && byFile.size === 0) throw new Error(`tsc failed without a block error:\n${r.stdout}${r.stderr}`);
  return byFile;
}

describe('README code blocks', () => {
  test('every package README says ESM-only and Node >= 20', () => {
    const missing = readmeFiles(root).filter((f) => /^(packages|apps\/trainer)\//.test(f))
      .filter((f) => !/ESM only .* Node .* 20 or later/.test(readFileSync(join(root, f), 'utf8')));
    expect(missing).toEqual([]);
  });

  test('blocks that opt out say why', () => {
    const counts = { run: 0, typecheck: 0, skip: 0 };
    for (const b of blocks) counts[b.mode]++;
    console.log(`README blocks: ${blocks.length}; run ${counts.run}, type-checked only ${counts.typecheck}, not checked ${counts.skip}`);
    for (const b of blocks.filter((b) => b.mode !== 'run')) console.log(`  ${b.file}:${b.line} ${b.mode === 'skip' ? 'not checked' : 'not run'}: ${b.reason}`);
    expect(counts.run).toBeGreaterThan(0);
    for (const b of blocks) if (b.mode !== 'run') expect(b.reason.length, `${b.file}:${b.line}`).toBeGreaterThan(10);
  });

  const errors = typecheck();
  for (const b of blocks.filter((b) => b.mode !== 'skip')) {
    test(`${b.file}:${b.line} type-checks`, () => {
      expect(errors.get(slug(b)) ?? []).toEqual([]);
    });
  }

  for (const b of blocks.filter((b) => b.mode === 'run')) {
    test(`${b.file}:${b.line} runs`, async () => {
      // Each block runs in a fresh folder, so files it writes (mbf.onnx) land there.
      const cwd = mkdtempSync(join(tmpdir(), 'fr-docs-'));
      try {
        await promisify(execFile)(process.execPath, ['--conditions=@fr/source', '--import', tsxLoader, join(out, slug(b))], {
          cwd, encoding: 'utf8', timeout: 180_000,
        });
      } catch (e) {
        const r = e as { stdout?: string; stderr?: string; message: string };
        throw new Error(`${b.file}:${b.line} failed:\n${r.stderr || r.message}\n${r.stdout ?? ''}`);
      } finally {
        rmSync(cwd, { recursive: true, force: true });
      }
    }, 200_000);
  }
});
