import { defineConfig } from 'vitest/config';

/** Shared vitest config: resolve workspace packages to their TypeScript sources. */
export const sharedConfig = defineConfig({
  resolve: { conditions: ['@fr/source', 'import', 'module', 'default'] },
  ssr: { resolve: { conditions: ['@fr/source', 'import', 'module', 'node', 'default'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    reporters: ['default', ['json', { outputFile: '.vitest-result.json' }]],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
  },
});
export default sharedConfig;
