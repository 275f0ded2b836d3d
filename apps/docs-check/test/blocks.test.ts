import { expect, test } from 'vitest';
import { blockModule, extractBlocks } from '../src/blocks.js';

const md = (...blocks: string[]) => blocks.map((b) => `text\n\n\`\`\`ts\n${b}\n\`\`\`\n`).join('\n');

test('a block runs unless its first lines say why not; givens are imported', () => {
  const [plain, given, typecheck, skip] = extractBlocks(md(
    "console.log('hi');",
    '// given: backend, labels (a CPU backend and 4 labels)\nconsole.log(backend, labels);',
    '// not run: needs a model.pth file\nreadFileSync("model.pth");',
    '// not checked: a Vite config\nexport default {};',
  ), 'X.md');
  expect(plain).toMatchObject({ file: 'X.md', line: 3, mode: 'run', given: [] });
  expect(given).toMatchObject({ mode: 'run', given: ['backend', 'labels'] });
  expect(blockModule(given!, './givens.js')).toBe("import { backend, labels } from './givens.js';\n// given: backend, labels (a CPU backend and 4 labels)\nconsole.log(backend, labels);\nexport {};\n");
  expect(typecheck).toMatchObject({ mode: 'typecheck', reason: 'needs a model.pth file' });
  expect(skip).toMatchObject({ mode: 'skip', reason: 'a Vite config' });
});

test('other languages are left alone; a marker without a reason or an open block is refused', () => {
  expect(extractBlocks('```sh\npnpm test\n```\n```yaml\na: 1\n```\n', 'Y.md')).toEqual([]);
  expect(() => extractBlocks(md('// not run:\nx();'), 'Y.md')).toThrow(/Y.md:3: "\/\/ not run:" must say why/);
  expect(() => extractBlocks('```ts\nx();\n', 'Y.md')).toThrow(/Y.md:1: the code block is not closed/);
});

test('a README may leave all its blocks to its own package, saying why', () => {
  const blocks = extractBlocks(`<!-- not checked: each block is a file of this folder, tested there -->\n\n${md('x();', 'y();')}`, 'G.md');
  expect(blocks.map((b) => [b.mode, b.reason])).toEqual([['skip', 'each block is a file of this folder, tested there'], ['skip', 'each block is a file of this folder, tested there']]);
  expect(() => extractBlocks(`<!-- not checked: -->\n${md('x();')}`, 'G.md')).toThrow(/G.md: "<!-- not checked: -->" must say why/);
});
