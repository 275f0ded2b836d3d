import { readdirSync, readFileSync } from 'node:fs';
import { CHROMIUM_CPU_FLAGS, CROSS_ORIGIN_ISOLATION, pageResults, servePageInChromium, type ServedPage } from '@fr/browser-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let served: ServedPage;

interface PageResults {
  error?: string;
  isolated: boolean;
  sameBits: boolean;
  runs: { requested: number; threads: number; simd: boolean; cases: number; layerCases: number; gradChecks: number; failed: string[]; notices: string[]; ms: number }[];
}

/** The layer golden vectors the Node suite checks (test/fixtures/layers), by file name. */
function layerFixtures(): Record<string, unknown> {
  const dir = new URL('./fixtures/layers/', import.meta.url);
  const names = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  return Object.fromEntries(names.map((f) => [f, JSON.parse(readFileSync(new URL(f, dir), 'utf8'))]));
}

beforeAll(async () => {
  // /isolated/ is served with COOP/COEP (SharedArrayBuffer, so threads); /plain/ without.
  served = await servePageInChromium({
    entry: new URL('./browser/page.ts', import.meta.url),
    title: 'fr wasm',
    args: CHROMIUM_CPU_FLAGS,
    files: { '/fixtures/layers.json': layerFixtures() },
    headers: (path) => (path.startsWith('/isolated/') ? { ...CROSS_ORIGIN_ISOLATION } : {}),
  });
});

afterAll(async () => {
  await served?.close();
});

async function resultsOf(path: string): Promise<PageResults> {
  const { results: out, errors } = await pageResults<PageResults>(served.browser, served.origin + path, 60_000);
  expect(errors).toEqual([]);
  expect(out.error).toBeUndefined();
  return out;
}

describe('in Chromium', () => {
  it('cross-origin isolated: the conformance kit, the layer golden vectors and the gradient checker pass at 1 and 2 threads, with the same bits', async () => {
    const out = await resultsOf('/isolated/');
    expect(out.isolated).toBe(true);
    expect(out.runs.map((r) => [r.requested, r.threads, r.simd])).toEqual([[1, 1, true], [2, 2, true]]);
    for (const r of out.runs) {
      if (process.env.FR_SHOW) console.log(`${r.threads} thread(s): ${r.cases} kernel cases, ${r.layerCases} layer goldens, ${r.gradChecks} gradient checks in ${r.ms} ms`);
      expect(r.cases).toBeGreaterThan(50);
      expect(r.layerCases).toBe(12);
      expect(r.gradChecks).toBe(4);
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
