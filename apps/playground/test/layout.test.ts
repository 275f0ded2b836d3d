/**
 * The page as people see it, at desktop and phone widths in Chromium: layout facts measured in the
 * DOM (no horizontal overflow, aligned panels, axis labels, tooltips, the margin and the faces),
 * with full-page screenshots kept in test-artifacts/ for a look.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FACES_PER_CLASS } from '../src/faces.js';
import { artifacts, startPlayground, type Playground } from './harness.js';

let playground: Playground;

beforeAll(async () => {
  playground = await startPlayground();
  await mkdir(artifacts, { recursive: true });
}, 120_000);

afterAll(async () => {
  await playground?.close();
});

const run = (page: Page, o: object) => page.evaluate((o) => window.frPlayground.run(o as never), o);
const shot = (page: Page, name: string) => page.screenshot({ path: join(artifacts, name), fullPage: true });

/** Elements that stick out of the viewport on the right, and the document's scroll width. */
const overflow = (page: Page) =>
  page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out: string[] = [];
    for (const e of document.querySelectorAll<HTMLElement>('body *')) {
      if (e.closest('[hidden]') || e.getClientRects().length === 0) continue;
      const r = e.getBoundingClientRect();
      if (r.right > width + 0.5 || r.left < -0.5) out.push(`${e.tagName.toLowerCase()}.${e.className} [${r.left.toFixed(0)}, ${r.right.toFixed(0)}]`);
    }
    return { viewport: width, scrollWidth: document.documentElement.scrollWidth, out };
  });

const top = (page: Page, selector: string) => page.$eval(selector, (e) => e.getBoundingClientRect().top);

/** A label of the log axis: 1, 2, 3 or 5 times a power of ten. */
const oneTwoFive = /^([1235](e-?\d+)?|0\.0*[1235]|[1235]0*)$/;

describe('the playground at desktop width (1280 px)', () => {
  let page: Page;
  let errors: string[];

  beforeAll(async () => {
    ({ page, errors } = await playground.open({ viewport: { width: 1280, height: 900 } }));
    await run(page, { loss: 'arcface', params: { s: 16, m: 0.5 }, steps: 60, panel: 0 });
    await run(page, { loss: 'normface', params: { s: 16 }, steps: 60, panel: 1 });
  }, 240_000);

  it('lines the two panels and their pictures up, though ArcFace has three controls and NormFace one', async () => {
    expect(await page.$$eval('[data-panel="0"] .controls label', (l) => l.length)).toBe(3);
    expect(await page.$$eval('[data-panel="1"] .controls label', (l) => l.length)).toBe(1);
    const tops = [await top(page, '[data-panel="0"]'), await top(page, '[data-panel="1"]')];
    const pictures = [await top(page, '[data-panel="0"] canvas.embedding'), await top(page, '[data-panel="1"] canvas.embedding')];
    const curves = [await top(page, '[data-panel="0"] canvas.curve'), await top(page, '[data-panel="1"] canvas.curve')];
    console.log(`desktop: panel tops ${tops.join(', ')}; picture tops ${pictures.join(', ')}`);
    expect(Math.abs(tops[0] - tops[1])).toBeLessThanOrEqual(1);
    expect(Math.abs(pictures[0] - pictures[1])).toBeLessThanOrEqual(1);
    expect(Math.abs(curves[0] - curves[1])).toBeLessThanOrEqual(1);
    const o = await overflow(page);
    expect(o.out).toEqual([]);
    expect(o.scrollWidth).toBeLessThanOrEqual(o.viewport);
  });

  it('labels the loss axis with real values: decades on the log scale, never a rounded 0.00', async () => {
    for (const panel of [0, 1]) {
      const { scale, ticks } = await page.$eval(`[data-panel="${panel}"] canvas.curve`, (c) => ({ ...(c as HTMLElement).dataset }));
      const labels = (ticks ?? '').split(' ');
      console.log(`panel ${panel}: ${scale} axis, ticks ${labels.join(', ')}`);
      expect(labels.length).toBeGreaterThanOrEqual(2);
      expect(new Set(labels).size).toBe(labels.length);
      for (const l of labels) expect(Number(l)).toBeGreaterThan(0);
      if (scale === 'log') for (const l of labels) expect(l).toMatch(oneTwoFive);
    }
    // ArcFace's loss falls over more than a decade in 60 steps: its axis is logarithmic.
    expect(await page.getAttribute('[data-panel="0"] canvas.curve', 'data-scale')).toBe('log');
  });

  it('shows a few input faces of each identity, and the margin on the circle', async () => {
    const columns = await page.$$eval('.faces .face-class', (cs) => cs.map((c) => c.querySelectorAll('canvas.face').length));
    expect(columns).toEqual(Array(8).fill(FACES_PER_CLASS));
    // ArcFace's decision regions stop m = 0.5 rad = 28.65 degrees short of each other; NormFace's meet.
    const gaps = [await page.getAttribute('[data-panel="0"] canvas.embedding', 'data-margin-gap'), await page.getAttribute('[data-panel="1"] canvas.embedding', 'data-margin-gap')];
    console.log(`margin band between neighbouring classes: ArcFace ${gaps[0]} deg, NormFace ${gaps[1]} deg`);
    expect(Number(gaps[0])).toBeCloseTo((0.5 * 180) / Math.PI, 1);
    expect(Number(gaps[1])).toBeCloseTo(0, 1);
  });

  it('has a tooltip on every control and statistic', async () => {
    const untitled = await page.evaluate(() => {
      const missing: string[] = [];
      const titled = (e: Element) => Boolean(e.closest('[title]')?.getAttribute('title')?.trim());
      for (const e of document.querySelectorAll('input, select, button, .spread tr, canvas')) {
        if (!titled(e)) missing.push(`${e.tagName.toLowerCase()}[name=${e.getAttribute('name')}] ${e.textContent?.slice(0, 30)}`);
      }
      return missing;
    });
    expect(untitled).toEqual([]);
    expect(await page.$$eval('.spread tr', (rows) => rows.length)).toBeGreaterThanOrEqual(8 + 5);
    await shot(page, 'desktop.png');
    expect(errors).toEqual([]);
  });

  it('in 3-d says sphere, draws one, and turns it when dragged', async () => {
    await run(page, { loss: 'arcface', params: { s: 16, m: 0.5 }, steps: 40, panel: 0, embeddingDim: 3 });
    const lead = await page.textContent('[data-role="lead"]');
    expect(lead).toContain('3-d embedding');
    expect(lead).toContain('sphere');
    expect(lead).not.toContain('circle');
    const canvas = (await page.$('[data-panel="0"] canvas.embedding'))!;
    expect(await canvas.getAttribute('data-dim')).toBe('3');
    // The margin on the sphere: ArcFace's band toward each class's nearest neighbour is m = 28.65 degrees.
    const gap3d = Number(await canvas.getAttribute('data-margin-gap'));
    console.log(`3-d margin band: ArcFace ${gap3d} deg`);
    expect(gap3d).toBeCloseTo((0.5 * 180) / Math.PI, 1);
    expect(await canvas.getAttribute('title')).toContain('the band between neighbouring loops is the margin');
    const before = { yaw: Number(await canvas.getAttribute('data-yaw')), picture: await canvas.screenshot() };
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 80, box.y + box.height / 2 + 20, { steps: 8 });
    await page.mouse.up();
    const after = { yaw: Number(await canvas.getAttribute('data-yaw')), picture: await canvas.screenshot() };
    expect(after.yaw - before.yaw).toBeCloseTo(0.8, 5);
    expect(Buffer.compare(before.picture, after.picture)).not.toBe(0);
    await shot(page, 'desktop-3d.png');
    expect(errors).toEqual([]);
  }, 120_000);
});

for (const width of [390, 360]) {
  describe(`the playground at phone width (${width} px)`, () => {
    it('fits the width: no horizontal scrolling, no clipped card, in both views', async () => {
      const { page, errors } = await playground.open({ viewport: { width, height: 800 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      await run(page, { loss: 'arcface', params: { s: 16, m: 0.5 }, steps: 30, panel: 0 });
      const o = await overflow(page);
      const axis = await page.$eval('[data-panel="0"] canvas.curve', (c) => {
        const e = c as HTMLElement;
        return { scale: e.dataset.scale ?? '', ticks: e.dataset.ticks ?? '', width: e.clientWidth, height: e.clientHeight };
      });
      console.log(`${width} px: scrollWidth ${o.scrollWidth}, viewport ${o.viewport}; loss axis ${JSON.stringify(axis)}`);
      expect(axis.ticks.split(' ').length).toBeGreaterThanOrEqual(2);
      expect(o.out).toEqual([]);
      expect(o.scrollWidth).toBeLessThanOrEqual(width);
      // The note names the page query that takes the software adapter; it stays on one line.
      const queries = await page.$$eval('#fallback-note code.query', (cs) => cs.map((c) => ({ text: c.textContent, lines: c.getClientRects().length })));
      expect(queries).toEqual([{ text: '?backend=webgpu', lines: 1 }]);
      const picture = (await page.$('[data-panel="0"] canvas.embedding'))!.boundingBox();
      expect((await picture)!.width).toBeGreaterThan(200);
      await shot(page, `phone-${width}.png`);
      await page.locator('[data-panel="0"]').screenshot({ path: join(artifacts, `phone-${width}-panel.png`) });
      await page.evaluate(() => window.frPlayground.show('speed'));
      const s = await overflow(page);
      expect(s.out).toEqual([]);
      expect(s.scrollWidth).toBeLessThanOrEqual(width);
      await shot(page, `phone-${width}-speed.png`);
      expect(errors).toEqual([]);
      await page.close();
    }, 120_000);
  });
}

describe('the speed view says what it runs on', () => {
  it('names SwiftShader a software adapter, from the adapter info, when told to use it (?backend=webgpu)', async () => {
    const { page } = await playground.open({ query: '?backend=webgpu' });
    expect(await page.getAttribute('#backend', 'data-backend')).toBe('webgpu');
    await page.evaluate(() => window.frPlayground.show('speed'));
    expect(await page.getAttribute('[data-role="adapter"]', 'data-kind')).toBe('software');
    const text = await page.textContent('[data-role="adapter"]');
    expect(text).toMatch(/swiftshader/i);
    expect(text).toContain('software adapter');
    await page.close();
  });

  it('prefers the WebAssembly backend to a software adapter, trains on it with threads, and says which adapter it passed over', async () => {
    const { page, errors } = await playground.open();
    const ready = await page.evaluate(() => window.frPlayground.ready);
    expect(ready.backend).toBe('wasm');
    expect(ready.skippedAdapter).toMatch(/swiftshader/i);
    expect(ready.adapter).toMatch(/WebAssembly SIMD, \d+ threads\)/);
    expect(await page.getAttribute('#backend', 'data-backend')).toBe('wasm');
    expect(await page.textContent('#fallback-note')).toMatch(/^No hardware GPU here \(the only WebGPU adapter, .*swiftshader.*, is a software adapter/i);
    const r = await run(page, { loss: 'arcface', params: { s: 16, m: 0.5 }, steps: 30, panel: 0 });
    expect(r.backend).toBe('wasm');
    expect(r.losses[29]).toBeLessThan(r.losses[0]);
    await page.evaluate(() => window.frPlayground.show('speed'));
    expect(await page.getAttribute('[data-role="adapter"]', 'data-kind')).toBe('wasm');
    const text = await page.textContent('[data-role="adapter"]');
    expect(text).toContain(`No hardware GPU here (${ready.fallbackReason})`);
    expect(text).toContain('software adapter');
    expect(text).toContain('one worker thread per core');
    console.log(`software adapter only: ${text} (${r.msPerStep.toFixed(0)} ms per step)`);
    await shot(page, 'desktop-software-adapter-speed.png');
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('falls back to the WebAssembly backend, with threads, when the browser has no WebGPU, and says so', async () => {
    const page = await playground.openWithoutWebGpu();
    const ready = await page.evaluate(() => window.frPlayground.ready);
    expect(ready.backend).toBe('wasm');
    expect(ready.fallbackReason).toBeTruthy();
    expect(await page.isVisible('#fallback-note')).toBe(true);
    expect(await page.textContent('#fallback-note')).toContain('WebAssembly backend');
    await page.evaluate(() => window.frPlayground.show('speed'));
    expect(await page.getAttribute('[data-role="adapter"]', 'data-kind')).toBe('wasm');
    const text = await page.textContent('[data-role="adapter"]');
    expect(text).toContain(`WebGPU is not available here (${ready.fallbackReason})`);
    expect(text).toContain('@fr/backend-wasm');
    expect(text).toContain('one worker thread per core');
    console.log(`without WebGPU: ${text}`);
    await shot(page, 'desktop-no-webgpu-speed.png');
    await page.close();
  });

  it('explains the CPU backend chosen with ?backend=cpu', async () => {
    const { page } = await playground.open({ query: '?backend=cpu' });
    await page.evaluate(() => window.frPlayground.show('speed'));
    expect(await page.getAttribute('[data-role="adapter"]', 'data-kind')).toBe('cpu');
    expect(await page.textContent('[data-role="adapter"]')).toContain('@fr/backend-cpu');
    await shot(page, 'desktop-cpu-speed.png');
    await page.close();
  });
});
