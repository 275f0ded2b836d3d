/**
 * Shared by the browser tests: builds the app with Vite into a temporary folder, serves it with
 * `vite preview` (so the headers of vite.config.ts are the ones under test) and opens Debian's
 * Chromium through playwright-core with a SwiftShader WebGPU adapter.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { CHROMIUM_WEBGPU_FLAGS } from '@fr/core/testing';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const artifacts = join(root, 'test-artifacts');


export interface Playground {
  outDir: string;
  url: string;
  browser: Browser;
  /** A new page at the given viewport, with its errors and requests recorded. */
  open(o?: BrowserContextOptions & { query?: string }): Promise<{ page: Page; errors: string[]; requests: string[] }>;
  /** The page in a second Chromium started without the WebGPU flags (WebGPU disabled), closed by `close()`. */
  openWithoutWebGpu(): Promise<Page>;
  close(): Promise<void>;
}

export async function startPlayground(): Promise<Playground> {
  const outDir = await mkdtemp(join(tmpdir(), 'fr-playground-'));
  const configFile = join(root, 'vite.config.ts');
  await build({ root, configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const server: PreviewServer = await preview({ root, configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 4173, strictPort: false, open: false } });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report a local URL');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_WEBGPU_FLAGS] });
  let plain: Browser | null = null;
  return {
    outDir,
    url,
    browser,
    async open(o = {}) {
      const { query, ...context } = o;
      const page = await browser.newPage({ viewport: { width: 1280, height: 760 }, ...context });
      const errors: string[] = [];
      const requests: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(url + (query ?? ''));
      await page.evaluate(() => window.frPlayground.ready);
      return { page, errors, requests };
    },
    async openWithoutWebGpu() {
      plain ??= await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-features=WebGPU'] });
      const page = await plain.newPage({ viewport: { width: 1280, height: 760 } });
      await page.goto(url);
      return page;
    },
    async close() {
      await plain?.close();
      await browser.close();
      await new Promise<void>((resolve, reject) => server.httpServer.close((e) => (e ? reject(e) : resolve())));
      await rm(outDir, { recursive: true, force: true });
    },
  };
}
