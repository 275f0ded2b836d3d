/**
 * What a user of the published packages gets. `pnpm pack` builds each package through its
 * `prepack` script and packs it; npm installs the tarballs into empty projects outside the
 * workspace, where:
 * - a TypeScript project type-checks against the packed `.d.ts` files with `skipLibCheck: false`,
 *   `strict` and `noUncheckedIndexedAccess`, once as a browser project (DOM, no Node types) and once
 *   as a Node project (the `/node` entries);
 * - core + the WebGPU backend install without Dawn (npm `webgpu` is an optional peer dependency),
 *   the browser entry loads in Node, and the `/node` entry says to `npm i webgpu` when asked for a
 *   device;
 * - the install sizes are measured (printed, and bounded so that Dawn cannot slip back in).
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';

const root = resolve(__dirname, '../../..');
// Packed in dependency order: a package's build reads the .d.ts files of the ones before it.
const packages = { core: 'packages/core', 'backend-cpu': 'packages/backend-cpu', 'backend-webgpu': 'packages/backend-webgpu', arcface: 'packages/losses/arcface' };
type Name = keyof typeof packages;

const work = mkdtempSync(join(tmpdir(), 'fr-consumer-'));
const tarballs = join(work, 'tarballs');
const tarball = (name: Name) => join(tarballs, `fr-${name}-0.1.0.tgz`);

/** Bytes of every file under a folder (npm's "install size"), symlinks not followed. */
function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += bytesUnder(path);
    else if (entry.isFile()) total += lstatSync(path).size;
  }
  return total;
}

// Asynchronous, so that vitest's worker stays responsive during the long installs and builds.
const run = promisify(execFile);

async function project(name: string, deps: string[], files: Record<string, string> = {}): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  await run('npm', ['install', '--no-audit', '--no-fund', ...deps], { cwd: dir });
  return dir;
}

const MB = 1024 * 1024;
const tsc = async (cwd: string, config: string) => {
  try {
    await run(join(root, 'node_modules/.bin/tsc'), ['-p', config], { cwd });
    return '';
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? e);
  }
};

beforeAll(async () => {
  for (const dir of Object.values(packages)) await run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: join(root, dir) });
}, 300_000);

describe('the packed packages, as a user installs them', () => {
  test('every tarball carries its built entries and .d.ts files; the WebGPU backend asks for Dawn only as an optional peer', () => {
    for (const name of Object.keys(packages) as Name[]) {
      const listing = execFileSync('tar', ['tzf', tarball(name)], { encoding: 'utf8' }).split('\n');
      expect(listing, name).toContain('package/dist/index.js');
      expect(listing, name).toContain('package/dist/index.d.ts');
    }
    const manifest = JSON.parse(execFileSync('tar', ['xzOf', tarball('backend-webgpu'), 'package/package.json'], { encoding: 'utf8' }));
    expect(manifest.dependencies).toEqual({ '@webgpu/types': expect.any(String) });
    expect(manifest.peerDependencies.webgpu).toBeDefined();
    expect(manifest.peerDependenciesMeta).toEqual({ webgpu: { optional: true } });
    const dts = execFileSync('tar', ['xzOf', tarball('backend-webgpu'), 'package/dist/index.d.ts'], { encoding: 'utf8' });
    expect(dts.split('\n')[0]).toBe('/// <reference types="@webgpu/types" preserve="true" />');
  });

  test('core + CPU backend + ArcFace install small', async () => {
    const app = await project('cpu-app', [tarball('core'), tarball('backend-cpu'), tarball('arcface')]);
    const bytes = bytesUnder(join(app, 'node_modules'));
    console.log(`install size, @fr/core + @fr/backend-cpu + @fr/arcface: ${(bytes / MB).toFixed(2)} MB (${readdirSync(join(app, 'node_modules')).join(', ')})`);
    expect(bytes).toBeLessThan(20 * MB);
  }, 180_000);

  test('core + WebGPU backend install without Dawn; the browser entry loads in Node and the /node entry says to install webgpu', async () => {
    const app = await project('webgpu-app', [tarball('core'), tarball('backend-webgpu')], {
      'main.mjs': `
import * as browser from '@fr/backend-webgpu';
const node = await import('@fr/backend-webgpu/node');
const out = { browserExports: Object.keys(browser).length };
try {
  await node.createNodeWebGpuBackend();
  out.created = true;
} catch (e) {
  out.error = { name: e.name, message: e.message };
}
console.log(JSON.stringify(out));
`,
    });
    expect(existsSync(join(app, 'node_modules/webgpu'))).toBe(false);
    expect(existsSync(join(app, 'node_modules/@webgpu/types/package.json'))).toBe(true);
    const bytes = bytesUnder(join(app, 'node_modules'));
    console.log(`install size, @fr/core + @fr/backend-webgpu (no Dawn): ${(bytes / MB).toFixed(2)} MB (${readdirSync(join(app, 'node_modules')).join(', ')})`);
    // Dawn alone is about 130 MB.
    expect(bytes).toBeLessThan(20 * MB);
    const out = JSON.parse((await run('node', ['main.mjs'], { cwd: app })).stdout);
    expect(out.browserExports).toBeGreaterThan(0);
    expect(out.created).toBeUndefined();
    expect(out.error.name).toBe('BackendError');
    expect(out.error.message).toContain('npm i webgpu');
    expect(out.error.message).toContain('optional peer dependency');
  }, 180_000);

  test('a strict TypeScript project type-checks against the packed .d.ts files with skipLibCheck off', async () => {
    const strict = { strict: true, noUncheckedIndexedAccess: true, skipLibCheck: false, noEmit: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext' };
    const app = await project('typed-app', [tarball('core'), tarball('backend-cpu'), tarball('backend-webgpu'), tarball('arcface'), '@types/node@^20.19.0'], {
      'tsconfig.browser.json': JSON.stringify({ compilerOptions: { ...strict, lib: ['ES2023', 'DOM'], types: [] }, files: ['browser.ts'] }),
      // @webgpu/types names DOM types (EventTarget, VideoFrame), so WebGPU code needs lib DOM in Node too.
      'tsconfig.node.json': JSON.stringify({ compilerOptions: { ...strict, lib: ['ES2023', 'DOM'], types: ['node'] }, files: ['node.ts'] }),
      'browser.ts': `
import { createRng, tensor, tidy, type Backend } from '@fr/core';
import { createCpuBackend } from '@fr/backend-cpu';
import { requestWebGpuBackend, type WebGpuBackend } from '@fr/backend-webgpu';
import { arcface } from '@fr/arcface';

export async function pick(): Promise<Backend> {
  try {
    const gpu: WebGpuBackend = await requestWebGpuBackend();
    const device: GPUDevice = gpu.device;
    return device.limits.maxBufferSize > 0 ? gpu : createCpuBackend();
  } catch {
    return createCpuBackend();
  }
}

export async function arcfaceLoss(backend: Backend): Promise<number> {
  const head = arcface.createHead({ backend, numClasses: 4, embeddingDim: 2, params: arcface.params.parse({ s: 16 }), rng: createRng(0) });
  const loss = tidy(() => head.forward(tensor(backend, new Float32Array([1, 0, 0, 1]), [2, 2]), Int32Array.from([0, 1])));
  const first: number | undefined = head.parameters[0]?.tensor.size;
  return (await loss.item()) + (first ?? 0) * 0;
}
`,
      'node.ts': `
import { createWorkerCpuBackend } from '@fr/backend-cpu/node';
import { createNodeWebGpuBackend, type WebGpuBackend } from '@fr/backend-webgpu/node';

export async function backends(): Promise<[WebGpuBackend, ReturnType<typeof createWorkerCpuBackend>]> {
  const gpu = await createNodeWebGpuBackend({ powerPreference: 'low-power' });
  const usage: number = GPUBufferUsage.STORAGE;
  return [usage > 0 ? gpu : gpu, createWorkerCpuBackend()];
}
`,
    });
    expect(await tsc(app, 'tsconfig.browser.json')).toBe('');
    expect(await tsc(app, 'tsconfig.node.json')).toBe('');
    // The check can fail: a misuse of the packed types is an error.
    writeFileSync(join(app, 'bad.ts'), `import { arcface } from '@fr/arcface';\nexport const wrong: string = arcface.params.parse({}).s;\n`);
    writeFileSync(join(app, 'tsconfig.bad.json'), JSON.stringify({ compilerOptions: { ...strict, types: [] }, files: ['bad.ts'] }));
    expect(await tsc(app, 'tsconfig.bad.json')).toMatch(/bad\.ts.*error TS2322/);
  }, 240_000);
});
