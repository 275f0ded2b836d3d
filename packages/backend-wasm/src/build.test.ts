import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

test('the shipped .wasm modules are what assembly/ builds to (rebuild: pnpm build:wasm)', () => {
  const out = mkdtempSync(join(tmpdir(), 'fr-wasm-'));
  try {
    execFileSync(process.execPath, [join(root, 'tooling/build-wasm.mjs'), out], { stdio: 'pipe' });
    for (const file of ['wasm/kernels-plain.wasm', 'wasm/kernels-shared.wasm', 'src/wasm-binary.ts']) {
      const shipped = readFileSync(join(root, file));
      const rebuilt = readFileSync(join(out, file));
      expect(rebuilt.equals(shipped), `${file} differs from a rebuild of assembly/`).toBe(true);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 120_000);
