import { pageResults, servePageInChromium, type ServedPage } from '@fr/browser-kit';
import { CHROMIUM_WEBGPU_FLAGS } from '@fr/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let served: ServedPage;

beforeAll(async () => {
  served = await servePageInChromium({ entry: new URL('./browser/page.ts', import.meta.url), title: 'fr webgpu', args: CHROMIUM_WEBGPU_FLAGS });
});

afterAll(async () => {
  await served?.close();
});

interface PageResults {
  error?: string;
  adapter: string;
  hardware: boolean;
  results: { name: string; maxError: number; allowed: number }[];
}

describe('in Chromium on navigator.gpu', () => {
  it('matmul, marginLoss (both reducers), l2normalize and sumSquares match the CPU backend in the page', async () => {
    const { results: out, errors } = await pageResults<PageResults>(served.browser, `${served.origin}/`, 30_000);
    expect(errors).toEqual([]);
    expect(out.error).toBeUndefined();
    // The flags force SwiftShader, so the backend must report a software adapter.
    expect(out.hardware).toBe(false);
    expect(out.results.length).toBe(4 + 6 + 2 + 1);
    for (const r of out.results) expect(r.maxError, r.name).toBeLessThanOrEqual(r.allowed);
  });
});
