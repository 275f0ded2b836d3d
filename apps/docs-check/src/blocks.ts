/**
 * The TypeScript code blocks of the READMEs, and what each says about itself in its first lines:
 * - `// given: backend, embeddings, labels` names values taken from ./givens.ts (small, seeded, real);
 * - `// not run: <why>` is type-checked only (it needs a file, a browser or minutes of training);
 * - `// not checked: <why>` is neither (a config file of another tool, a fragment of the block above).
 * Every other block is type-checked and run. A README whose blocks its own package tests (a guide
 * made of the files of its folder) says so once: `<!-- not checked: <why> -->` on a line of its own.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export type BlockMode = 'run' | 'typecheck' | 'skip';

export interface Block {
  /** The README, relative to the repository root, and the line of the opening fence. */
  file: string;
  line: number;
  code: string;
  mode: BlockMode;
  /** Why a block is not run (the text after the marker). */
  reason: string;
  given: string[];
}

/** The READMEs the docs are made of: the root one, CONTRIBUTING.md, and every README of packages, apps and examples. */
export function readmeFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.') || entry.name === 'dist') continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name === 'README.md') found.push(relative(root, path));
    }
  };
  for (const top of ['packages', 'apps', 'examples']) walk(join(root, top));
  return ['README.md', 'CONTRIBUTING.md', ...found.sort()].filter((f) => existsSync(join(root, f)));
}

const FENCE = /^```(ts|typescript)\s*$/;

/** The ts/typescript blocks of one markdown text; a marker without a reason is an error naming the block. */
export function extractBlocks(markdown: string, file: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  const whole = /^<!-- not checked:\s*(.*?)\s*-->$/m.exec(markdown);
  if (whole && !whole[1]) throw new Error(`${file}: "<!-- not checked: -->" must say why`);
  for (let i = 0; i < lines.length; i++) {
    if (!FENCE.test(lines[i]!)) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`${file}:${start + 1}: the code block is not closed`);
    let mode: BlockMode = 'run', reason = '', given: string[] = [];
    for (const l of body.slice(0, 3)) {
      const m = /^\/\/ (given|not run|not checked):\s*(.*)$/.exec(l.trim());
      if (!m) continue;
      if (m[1] === 'given') given = m[2]!.replace(/\(.*\)/, '').split(',').map((s) => s.trim()).filter(Boolean);
      else {
        mode = m[1] === 'not run' ? 'typecheck' : 'skip';
        reason = m[2]!.trim();
        if (!reason) throw new Error(`${file}:${start + 1}: "// ${m[1]}:" must say why`);
      }
    }
    if (whole) [mode, reason] = ['skip', whole[1]!];
    blocks.push({ file, line: start + 1, code: body.join('\n'), mode, reason, given });
  }
  return blocks;
}

/** The block as a module: its givens imported, and an export so top-level await is allowed. */
export function blockModule(block: Block, givensPath: string): string {
  const head = block.given.length ? `import { ${block.given.join(', ')} } from '${givensPath}';\n` : '';
  return `${head}${block.code}\nexport {};\n`;
}
