import { readdirSync, readFileSync } from 'node:fs';
import { CHROMIUM_CPU_FLAGS, CROSS_ORIGIN_ISOLATION, pageResults, servePageInChromium, type ServedPage } from '@fr/browser-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The golden cases each loss package ships in its test/fixtures: a lost file fails this suite. */
const SHIPPED = { adaface: 2, arcface: 7, cosface: 4, curricularface: 2, elasticface: 2, magface: 2, multiface: 6, softmax: 8, sphereface: 4, sphereface2: 12, 'subcenter-arcface': 3, x2softmax: 3 };

/** Every package's fixtures, by package and file name, read through the workspace links of the devDependencies. */
function lossFixtures(): Record<string, Record<string, unknown>> {
  return Object.fromEntries(Object.keys(SHIPPED).map((pkg) => {
    const dir = new URL(`../node_modules/@fr/${pkg}/test/fixtures/`, import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
    return [pkg, Object.fromEntries(files.map((f) => [f, JSON.parse(readFileSync(new URL(f, dir), 'utf8'))]))];
  }));
}

interface PageResults {
  error?: string;
  isolated: boolean;
  runs: { requested: number; threads: number; simd: boolean; goldenCases: Record<string, number>; gradChecks: number; failed: string[]; ms: number }[];
}

let served: ServedPage;

beforeAll(async () => {
  served = await servePageInChromium({
    entry: new URL('./browser/page.ts', import.meta.url),
    title: 'fr losses on wasm',
    args: CHROMIUM_CPU_FLAGS,
    files: { '/fixtures/losses.json': lossFixtures() },
    // Cross-origin isolated, so SharedArrayBuffer exists and the backend gets its threads.
    headers: () => ({ ...CROSS_ORIGIN_ISOLATION }),
  });
});

afterAll(async () => {
  await served?.close();
});

describe('on the wasm backend in Chromium', () => {
  it('every loss golden case and every exact gradient check passes at 1 and 2 threads', async () => {
    const { results: out, errors } = await pageResults<PageResults>(served.browser, `${served.origin}/`, 110_000);
    expect(errors).toEqual([]);
    expect(out.error).toBeUndefined();
    expect(out.isolated).toBe(true);
    expect(out.runs.map((r) => [r.requested, r.threads, r.simd])).toEqual([[1, 1, true], [2, 2, true]]);
    for (const r of out.runs) {
      if (process.env.FR_SHOW) console.log(`${r.threads} thread(s): ${Object.values(r.goldenCases).reduce((a, b) => a + b)} golden cases, ${r.gradChecks} gradient checks in ${r.ms} ms`);
      expect(r.goldenCases).toEqual(SHIPPED);
      expect(r.gradChecks).toBe(12);
      expect(r.failed).toEqual([]);
    }
  });
});
