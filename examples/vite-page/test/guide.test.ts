/** The guide (README.md) shows this example's code: each block named by the line above it is that file, whole. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

const guide = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

it('every file-named code block of the guide is the example file, character for character', () => {
  const blocks = [...guide.matchAll(/^`([\w./-]+)`:\n\n```\w+\n([\s\S]*?)\n```$/gm)].map((m) => ({ file: m[1], code: m[2] }));
  expect(blocks.map((b) => b.file)).toEqual(['vite.config.ts', 'src/backend.ts', 'src/train.ts', 'src/main.ts', 'index.html']);
  for (const b of blocks) expect(b.code, b.file).toBe(readFileSync(new URL(`../${b.file}`, import.meta.url), 'utf8').trimEnd());
});
