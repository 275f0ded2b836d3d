// Adds up the vitest JSON results of every package into one closing line.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['packages', 'packages/losses', 'packages/backbones', 'apps', 'examples'];
let passed = 0, failed = 0, skipped = 0, suites = 0;
const failures = [];
for (const root of roots) {
  if (!existsSync(root)) continue;
  for (const name of readdirSync(root)) {
    const file = join(root, name, '.vitest-result.json');
    if (!existsSync(file)) continue;
    const r = JSON.parse(readFileSync(file, 'utf8'));
    suites++;
    passed += r.numPassedTests;
    failed += r.numFailedTests;
    skipped += r.numPendingTests + r.numTodoTests;
    if (r.numFailedTests > 0 || r.success === false) failures.push(join(root, name));
  }
}
if (suites === 0) {
  console.error('summary: no test results were found');
  process.exit(1);
}
if (failures.length) console.log(`failing packages: ${failures.join(', ')}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || skipped > 0 ? 1 : 0);
