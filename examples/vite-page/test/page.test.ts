/**
 * Builds the example with Vite, serves the output with `vite preview` (the headers of
 * vite.config.ts) and opens it in Debian's Chromium, whose only WebGPU adapter is SwiftShader: the
 * page picks the threaded wasm backend and its loss falls; with ?backend=webgpu it trains on WebGPU.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_WEBGPU_FLAGS } from '@fr/core/testing';
import { chromium, type Browser } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface ExampleResult {
  backend: string;
  description: string;
  isolated: boolean;
  losses: number[];
}

const root = fileURLToPath(new URL('..', import.meta.url));
let outDir = '';
let server: PreviewServer;
let browser: Browser;
let url = '';

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'fr-vite-page-'));
  const configFile = join(root, 'vite.config.ts');
  // logLevel error: zod's sources carry comments Rollup cannot place, and says so at length.
  await build({ root, configFile, logLevel: 'error', build: { outDir, emptyOutDir: true } });
  server = await preview({ root, configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 4180, strictPort: false, open: false } });
  url = server.resolvedUrls?.local[0] ?? '';
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_WEBGPU_FLAGS] });
});

afterAll(async () => {
  await browser?.close();
  if (server) await new Promise<void>((resolve, reject) => server.httpServer.close((e) => (e ? reject(e) : resolve())));
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

async function open(query: string): Promise<ExampleResult> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(url + query);
    await page.waitForFunction(() => 'frExample' in window, undefined, { timeout: 100_000 });
    const result = (await page.evaluate(() => (window as unknown as { frExample: unknown }).frExample)) as ExampleResult;
    expect(errors).toEqual([]);
    expect(await page.textContent('#log')).toContain(`step 20: loss ${result.losses[19].toFixed(3)}`);
    return result;
  } finally {
    await page.close();
  }
}

describe('the built example page in Chromium', () => {
  it('passes over the software adapter for the wasm backend, with threads (cross-origin isolated), and the loss falls', async () => {
    const r = await open('');
    console.log(`${r.description}: loss ${r.losses[0].toFixed(3)} -> ${r.losses[19].toFixed(3)}`);
    expect(r.isolated).toBe(true);
    expect(r.backend).toBe('wasm');
    expect(r.description).toMatch(/WebAssembly SIMD, [2-9]\d* threads/);
    expect(r.losses).toHaveLength(20);
    expect(r.losses.every(Number.isFinite)).toBe(true);
    expect(r.losses[19]).toBeLessThan(r.losses[0] / 2);
  });

  it('trains on WebGPU (SwiftShader) when told to take a software adapter, and the loss falls', async () => {
    const r = await open('?backend=webgpu');
    console.log(`${r.description}: loss ${r.losses[0].toFixed(3)} -> ${r.losses[19].toFixed(3)}`);
    expect(r.backend).toBe('webgpu');
    expect(r.description).toMatch(/swiftshader/i);
    expect(r.losses[19]).toBeLessThan(r.losses[0] / 2);
  });
});
