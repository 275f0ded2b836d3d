import { build } from 'esbuild';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_WEBGPU_FLAGS } from '@fr/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';


let server: Server;
let browser: Browser;
let url = '';

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
  const html = '<!doctype html><meta charset="utf-8"><title>fr webgpu</title><script type="module" src="/page.js"></script>';
  server = createServer((req, res) => {
    if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_WEBGPU_FLAGS] });
});

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
});

interface PageResults {
  error?: string;
  adapter: string;
  hardware: boolean;
  results: { name: string; maxError: number; allowed: number }[];
}

describe('in Chromium on navigator.gpu', () => {
  it('matmul, marginLoss (both reducers), l2normalize and sumSquares match the CPU backend in the page', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(() => 'frResults' in window, undefined, { timeout: 30_000 });
    const out = (await page.evaluate(() => (window as unknown as { frResults: Promise<unknown> }).frResults)) as PageResults;
    expect(errors).toEqual([]);
    expect(out.error).toBeUndefined();
    // The flags force SwiftShader, so the backend must report a software adapter.
    expect(out.hardware).toBe(false);
    expect(out.results.length).toBe(4 + 6 + 2 + 1);
    for (const r of out.results) expect(r.maxError, r.name).toBeLessThanOrEqual(r.allowed);
    await page.close();
  });
});
