/**
 * Builds the app with Vite, serves the static output, and trains ArcFace and NormFace in Debian's
 * Chromium on WebGPU (SwiftShader, taken with ?backend=webgpu: left to itself the page prefers the
 * wasm backend to a software adapter): the page must report WebGPU and ArcFace's margin must pull
 * the classes tighter around their centres than NormFace's plain scaled cosine does.
 */
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../src/main.js';
import { CROSS_ORIGIN_ISOLATION } from '../vite.config.js';
import { artifacts, startPlayground, type Playground } from './harness.js';

let playground: Playground;
let outDir = '';
let url = '';
let page: Page;
let pageErrors: string[] = [];
let requests: string[] = [];

beforeAll(async () => {
  playground = await startPlayground();
  ({ outDir, url } = playground);
  ({ page, errors: pageErrors, requests } = await playground.open({ query: '?backend=webgpu' }));
}, 120_000);

afterAll(async () => {
  await playground?.close();
});

describe('the built playground', () => {
  it('is static files only, with no Node-only module in the bundle', async () => {
    const files = await readdir(join(outDir, 'assets'));
    const js = files.filter((f) => f.endsWith('.js'));
    expect(js.length).toBeGreaterThan(0);
    const code = (await Promise.all(js.map((f) => readFile(join(outDir, 'assets', f), 'utf8')))).join('\n');
    // Dawn's loader, sharp and node: builtins would fail in a page (and the config refuses them).
    for (const bad of ['from"node:', "from 'node:", 'require("webgpu")', 'sharp-', 'dawn.node']) expect(code.includes(bad), bad).toBe(false);
    // The loss plugins' WGSL snippets are in the bundle.
    expect(code).toContain('fr_target');
    const html = await readFile(join(outDir, 'index.html'), 'utf8');
    expect(html).toMatch(/src="\.\/assets\/index-[\w-]+\.js"/);
  });

  it('is served cross-origin isolated (COOP/COEP from vite.config.ts), so a wasm backend can use threads', async () => {
    const response = await fetch(url);
    expect(response.headers.get('cross-origin-opener-policy')).toBe(CROSS_ORIGIN_ISOLATION['Cross-Origin-Opener-Policy']);
    expect(response.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
  });

  it('runs on WebGPU in Chromium, on the software adapter it was told to take, and says so', async () => {
    const ready = await page.evaluate(() => window.frPlayground.ready);
    expect(ready.backend).toBe('webgpu');
    expect(ready.fallbackReason).toBeUndefined();
    expect(ready.adapter.toLowerCase()).toContain('swiftshader');
    expect(await page.getAttribute('#backend', 'data-backend')).toBe('webgpu');
    expect(await page.isHidden('#fallback-note')).toBe(true);
    // Every control of ArcFace comes from its zod schema, at the 2-d preset.
    expect(await page.inputValue('[data-panel="0"] input[name="s"]')).toBe('16');
    expect(await page.inputValue('[data-panel="0"] input[name="m"]')).toBe('0.5');
    expect(await page.inputValue('[data-panel="0"] select[name="gradient"]')).toBe('detached');
  });

  it('ArcFace gathers each class tighter around its centre than softmax and NormFace', async () => {
    const steps = 70;
    const run = (o: object) => page.evaluate((o) => window.frPlayground.run(o as never), o) as Promise<RunResult>;
    const arc = await run({ loss: 'arcface', params: { s: 16, m: 0.5 }, steps, panel: 0 });
    const soft = await run({ loss: 'softmax', params: {}, steps, panel: 1 });
    // The page shows the same numbers it returned (panel 1 is reused for NormFace below).
    expect(await page.textContent('[data-panel="1"] [data-role="mean-spread"]')).toBe(`${soft.spread.mean.toFixed(2)}°`);
    const norm = await run({ loss: 'normface', params: { s: 16 }, steps, panel: 1 });
    for (const r of [arc, soft, norm]) {
      expect(r.backend).toBe('webgpu');
      expect(r.steps).toBe(steps);
      expect(r.losses).toHaveLength(steps);
      expect(r.losses.every(Number.isFinite)).toBe(true);
      expect(r.spread.perClass).toHaveLength(8);
    }
    for (const r of [arc, norm]) {
      // It learned: the loss fell and every image's nearest class centre is mostly its own.
      expect(r.losses[steps - 1]).toBeLessThan(r.losses[0] / 3);
      expect(r.spread.accuracy).toBeGreaterThanOrEqual(0.9);
    }
    expect(soft.losses[steps - 1]).toBeLessThan(soft.losses[0]);
    console.log(`angular spread after ${steps} steps: ArcFace ${arc.spread.mean.toFixed(2)} deg (${arc.msPerStep.toFixed(0)} ms/step), ` +
      `softmax ${soft.spread.mean.toFixed(2)} deg (accuracy ${soft.spread.accuracy.toFixed(2)}), NormFace ${norm.spread.mean.toFixed(2)} deg (${norm.msPerStep.toFixed(0)} ms/step)`);
    expect(arc.spread.mean).toBeLessThan(soft.spread.mean);
    expect(arc.spread.mean).toBeLessThan(norm.spread.mean);
    expect(await page.textContent('[data-panel="0"] [data-role="mean-spread"]')).toBe(`${arc.spread.mean.toFixed(2)}°`);
    expect(await page.textContent('[data-panel="1"] [data-role="mean-spread"]')).toBe(`${norm.spread.mean.toFixed(2)}°`);
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'playground.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
    // Offline once loaded: the page asked this server for its files and nothing else of anyone.
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((r) => !r.startsWith(url))).toEqual([]);
  }, 240_000);

  it('the speed view trains MobileFaceNet at 112x112 with ArcFace on WebGPU and reports images per second', async () => {
    const r = await page.evaluate(() => window.frPlayground.speed({ loss: 'arcface', backbone: 'mobilefacenet', batch: 2, steps: 1 }));
    console.log(`speed view: MobileFaceNet 112x112 + ArcFace, batch 2: ${r.imagesPerSecond.toFixed(3)} images/s (${r.msPerStep.toFixed(0)} ms/step, warm-up ${r.warmupMs.toFixed(0)} ms)`);
    expect(r).toMatchObject({ backend: 'webgpu', backbone: 'mobilefacenet', loss: 'arcface', batch: 2, steps: 1 });
    expect(r.parameters).toBe(2_092_288);
    expect(r.msPerStep).toBeGreaterThan(0);
    expect(r.imagesPerSecond).toBeCloseTo((2 * 1000) / r.msPerStep, 6);
    expect(pageErrors).toEqual([]);
  }, 300_000);
});
