#!/usr/bin/env node
// The `fr` command of an installed @fr/trainer: the compiled command line in dist/. In the
// workspace, `pnpm fr` runs the TypeScript sources instead.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(`error: ${cli.pathname} is missing: build @fr/trainer first (pnpm --filter @fr/trainer build)\n`);
  process.exit(1);
}
await import(cli.href);
