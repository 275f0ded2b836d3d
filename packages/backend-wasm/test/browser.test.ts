import { build } from 'esbuild';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let server: Server;
let browser: Browser;
let origin = '';

interface PageResults {
  error?: string;
  isolated: boolean;
  sameBits: boolean;
  runs: { requested: number; threads: number; simd: boolean; cases: number; failed: string[]; notices: string[] }[];
}

beforeAll(async () => {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./browser/page.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    conditions: ['@fr/source'],
    logLevel: 'silent',
  });
  const js = bundle.outputFiles[0].text;
  const html = '<!doctype html><meta charset="utf-8"><title>fr wasm</title><script type="module" src="/page.js"></script>';
  // /isolated/ is served with COOP/COEP (SharedArrayBuffer, so threads); /plain/ without.
  server = createServer((req, res) => {
    const isolated = req.url?.startsWith('/isolated/');
    const headers: Record<string, string> = isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {};
    if (req.url?.endsWith('/page.js')) res.writeHead(200, { ...headers, 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
});

async function resultsOf(path: string): Promise<PageResults> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(origin + path);
  await page.waitForFunction(() => 'frResults' in window, undefined, { timeout: 60_000 });
  const out = (await page.evaluate(() => (window as unknown as { frResults: Promise<unknown> }).frResults)) as PageResults;
  await page.close();
  expect(errors).toEqual([]);
  expect(out.error).toBeUndefined();
  return out;
}

describe('in Chromium', () => {
  it('cross-origin isolated: the conformance kit passes at 1 and 2 threads, with the same bits', async () => {
    const out = await resultsOf('/isolated/');
    expect(out.isolated).toBe(true);
    expect(out.runs.map((r) => [r.requested, r.threads, r.simd])).toEqual([[1, 1, true], [2, 2, true]]);
    for (const r of out.runs) {
      expect(r.cases).toBeGreaterThan(50);
      expect(r.failed).toEqual([]);
      expect(r.notices).toEqual([]);
    }
    expect(out.sameBits).toBe(true);
  });

  it('without isolation: one thread, said in a notice, and the kit still passes', async () => {
    const out = await resultsOf('/plain/');
    expect(out.isolated).toBe(false);
    const two = out.runs[1];
    expect(two.threads).toBe(1);
    expect(two.notices.join(' ')).toMatch(/no SharedArrayBuffer/);
    for (const r of out.runs) expect(r.failed).toEqual([]);
    expect(out.sameBits).toBe(true);
  });
});
