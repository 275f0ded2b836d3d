// House rules that a type checker does not see. Prints every violation with its file; exit 1 if any.
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['packages', 'packages/losses', 'packages/backbones', 'apps', 'examples'];
/** No source file over this many lines: split it by family (see CONTRIBUTING.md). */
const MAX_FILE_LINES = 500;
/**
 * @fr/core without its tests and its testing kit stays small enough to read in a sitting. 3,400:
 * the 3,000 of the first engine plus the parameter-schema builder (schema.ts, which keeps zod's whole
 * build out of pages), per-step head inputs and exact WGSL trigonometry.
 */
const MAX_CORE_LINES = 3400;
const problems = [];
const packages = [];
for (const root of roots) {
  if (!existsSync(root)) continue;
  for (const name of readdirSync(root)) {
    const dir = join(root, name);
    if (existsSync(join(dir, 'package.json'))) packages.push(dir);
  }
}

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

for (const dir of packages) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const published = !pkg.private;
  if (published) {
    if (!existsSync(join(dir, 'src/index.ts'))) problems.push(`${dir}: no src/index.ts (the one public surface)`);
    if (pkg.sideEffects !== false) problems.push(`${dir}/package.json: "sideEffects" must be false`);
    if (!pkg.exports?.['.']) problems.push(`${dir}/package.json: needs an exports map with "."`);
    if (pkg.type !== 'module') problems.push(`${dir}/package.json: "type" must be "module"`);
    if (!existsSync(join(dir, 'README.md'))) problems.push(`${dir}: no README.md`);
    const usesCore = pkg.name !== '@fr/core';
    if (usesCore && pkg.dependencies?.['@fr/core']) problems.push(`${dir}/package.json: @fr/core must be a peerDependency, not a dependency`);
  }
  let coreLines = 0;
  for (const file of walk(dir)) {
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    const count = text.endsWith('\n') ? lines.length - 1 : lines.length;
    if (count > MAX_FILE_LINES) problems.push(`${file}: ${count} lines, over ${MAX_FILE_LINES}: split it into files by family`);
    if (pkg.name === '@fr/core' && !file.includes('/src/testing/') && !file.endsWith('.test.ts') && file.includes('/src/')) coreLines += count;
    lines.forEach((line, i) => {
      const at = `${file}:${i + 1}`;
      if (/\b(describe|it|test)\.(skip|only|todo)\b/.test(line) || /\b(xit|xtest|xdescribe)\(/.test(line)) problems.push(`${at}: skipped or focused test`);
      // AssemblyScript (assembly/) resolves extensionless paths only; the rule is for Node's ESM resolution.
      if (/from ['"]\.{1,2}\/[^'"]+(?<!\.js|\.json|\.mjs|\.css|\.html|\.wgsl)['"]/.test(line) && !file.endsWith('.config.ts') && !file.includes('/assembly/')) problems.push(`${at}: relative import without an extension`);
      if (/from ['"]@fr\/[^'"]+\/src\//.test(line)) problems.push(`${at}: import of another package's src (use its public entry)`);
    });
  }
  if (coreLines > MAX_CORE_LINES) problems.push(`${dir}: @fr/core has ${coreLines} lines without its tests and src/testing, over ${MAX_CORE_LINES}`);
}
if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`lint: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`lint: ${packages.length} packages follow the house rules`);
