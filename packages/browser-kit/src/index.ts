/**
 * Node-side frame of the browser tests: bundles a test page for the browser, serves it on
 * 127.0.0.1 and launches Debian's Chromium; the page publishes its results as `window.frResults`.
 * Kept out of the package's index so suites that never open a browser load neither esbuild nor
 * playwright.
 */
import { build } from 'esbuild';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

/** Chromium's flags for a page that needs no GPU (the wasm backend): no sandbox as root, no background traffic on a closed network. */
export const CHROMIUM_CPU_FLAGS: readonly string[] = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

/** Response headers that make a page cross-origin isolated (COOP/COEP), so it has SharedArrayBuffer and the wasm backend its threads. */
export const CROSS_ORIGIN_ISOLATION: Readonly<Record<string, string>> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

export interface ServedPage {
  /** http://127.0.0.1:<port>, no trailing slash. */
  origin: string;
  browser: Browser;
  close(): Promise<void>;
}

export interface ServePageOptions {
  /** The page's entry module (TypeScript), bundled with the workspace's source condition. */
  entry: URL;
  title: string;
  /** Chromium's command-line flags. */
  args: readonly string[];
  /** Extra response headers for a request path (e.g. COOP/COEP for cross-origin isolation). */
  headers?: (path: string) => Record<string, string>;
  /** Data the page fetches, by exact path (e.g. '/fixtures.json'), served as JSON. */
  files?: Record<string, unknown>;
}

/** Bundles and serves the page (the `files` by path, any path ending in /page.js the bundle, any other the HTML) and launches Chromium. */
export async function servePageInChromium(o: ServePageOptions): Promise<ServedPage> {
  const bundle = await build({
    entryPoints: [fileURLToPath(o.entry)],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    conditions: ['@fr/source'],
    logLevel: 'silent',
  });
  const js = bundle.outputFiles[0].text;
  const html = `<!doctype html><meta charset="utf-8"><title>${o.title}</title><script type="module" src="/page.js"></script>`;
  const server = createServer((req, res) => {
    const headers = o.headers?.(req.url ?? '/') ?? {};
    const file = o.files && req.url && Object.hasOwn(o.files, req.url) ? JSON.stringify(o.files[req.url]) : undefined;
    if (file !== undefined) res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(file);
    else if (req.url?.endsWith('/page.js')) res.writeHead(200, { ...headers, 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async () => { await new Promise((r) => server.close(r)); };
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...o.args] });
  } catch (e) {
    await close();
    throw e;
  }
  return {
    origin,
    browser,
    async close() {
      await browser.close();
      await close();
    },
  };
}

/** Opens `url`, waits up to `timeoutMs` for `window.frResults` and returns it with the page's uncaught errors. */
export async function pageResults<T>(browser: Browser, url: string, timeoutMs: number): Promise<{ results: T; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await page.goto(url);
    await page.waitForFunction(() => 'frResults' in window, undefined, { timeout: timeoutMs });
    const results = (await page.evaluate(() => (window as unknown as { frResults: Promise<unknown> }).frResults)) as T;
    return { results, errors };
  } finally {
    await page.close();
  }
}
