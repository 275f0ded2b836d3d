#!/usr/bin/env bash
# The test command: every package's suite through turbo, one at a time (2-core machines, and the
# WebGPU suites share one software adapter), then one closing line over all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
find . -name .vitest-result.json -not -path '*/node_modules/*' -delete
node tooling/lint.mjs && bash tooling/test-env.sh pnpm exec turbo run typecheck test --concurrency=1 --env-mode=loose "$@"
status=$?
node tooling/summary.mjs || status=1
exit $status
