/**
 * Size budget of a web page that trains an ArcFace head on WebGPU (src/page.ts): at most 150 kB
 * minified with esbuild and with Vite. Bundles are deterministic for a given lockfile, so the
 * figure is a plain assertion; gzip sizes are printed beside it. Workspace packages are bundled
 * from their TypeScript sources (the `@fr/source` condition), as a page in this workspace would.
 */
import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as esbuild } from 'esbuild';
import { build as viteBuild, defaultClientConditions, type Rollup } from 'vite';
import { afterAll, describe, expect, it } from 'vitest';

const BUDGET = 150_000;
const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const figures: string[] = [];

interface Bundle {
  code: string;
  /** Bytes by package (dependencies by name, workspace packages by folder); Vite's are before minification. */
  inputs: Map<string, number>;
  /** Whether `inputs` are bytes of the minified output, worth printing. */
  minifiedParts: boolean;
}

function packageOf(file: string): string {
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules\/)/.exec(file);
  if (dep) return dep[1]!;
  return /(?:packages\/(?:losses\/|backbones\/)?|apps\/)([^/]+)\//.exec(file)?.[1] ?? file;
}

async function withEsbuild(): Promise<Bundle> {
  const result = await esbuild({
    entryPoints: [join(app, 'src/page.ts')],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['@fr/source'],
    write: false,
    metafile: true,
    logLevel: 'silent',
    outfile: 'page.js',
  });
  const output = Object.values(result.metafile.outputs)[0]!;
  const inputs = new Map<string, number>();
  for (const [file, { bytesInOutput }] of Object.entries(output.inputs)) {
    inputs.set(packageOf(file), (inputs.get(packageOf(file)) ?? 0) + bytesInOutput);
  }
  return { code: result.outputFiles[0]!.text, inputs, minifiedParts: true };
}

async function withVite(): Promise<Bundle> {
  const outDir = mkdtempSync(join(tmpdir(), 'fr-bundle-size-'));
  try {
    const result = (await viteBuild({
      root: app,
      configFile: false,
      logLevel: 'silent',
      resolve: { conditions: ['@fr/source', ...defaultClientConditions] },
      build: { outDir, write: false, target: 'es2022', reportCompressedSize: false },
    })) as Rollup.RollupOutput;
    const chunks = result.output.filter((o): o is Rollup.OutputChunk => o.type === 'chunk');
    const inputs = new Map<string, number>();
    for (const chunk of chunks) {
      for (const [file, { renderedLength }] of Object.entries(chunk.modules)) {
        inputs.set(packageOf(file), (inputs.get(packageOf(file)) ?? 0) + renderedLength);
      }
    }
    return { code: chunks.map((c) => c.code).join('\n'), inputs, minifiedParts: false };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

const kB = (n: number) => `${(n / 1000).toFixed(1)} kB`;

describe('browser bundle of @fr/core + @fr/backend-webgpu + @fr/arcface', () => {
  afterAll(() => console.log(`bundle sizes (budget ${kB(BUDGET)} minified):\n${figures.join('\n')}`));

  for (const [bundler, bundle] of [
    ['esbuild', withEsbuild],
    ['vite', withVite],
  ] as const) {
    it(`is at most 150 kB minified with ${bundler}`, async () => {
      const { code, inputs, minifiedParts } = await bundle();
      const size = Buffer.byteLength(code);
      const parts = [...inputs].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${kB(n)}`);
      const detail = minifiedParts ? ` (${parts.join(', ')})` : '';
      figures.push(`  ${bundler}: ${kB(size)} minified, ${kB(gzipSync(code, { level: 9 }).length)} gzip${detail}`);
      // The page really holds what it uses: the WGSL kernels, the loss, and zod's parsing of its parameters.
      expect(inputs.get('backend-webgpu')).toBeGreaterThan(20_000);
      expect(inputs.get('arcface')).toBeGreaterThan(0);
      expect(inputs.get('core')).toBeGreaterThan(10_000);
      expect(inputs.get('zod')).toBeGreaterThan(0);
      expect(code).toContain('@compute');
      expect(size).toBeLessThanOrEqual(BUDGET);
    });
  }
});
