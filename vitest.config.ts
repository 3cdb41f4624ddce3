import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// type-graphql needs decorator metadata, which esbuild does not emit: swc compiles the TypeScript.
// Workspace packages export their sources under the "source" condition, so tests need no build.
// Vite's default server conditions, with "source" first.
const conditions = ['source', 'node', 'development|production'];
const shared = {
  plugins: [swc.vite({ jsc: { target: 'es2022', transform: { legacyDecorator: true, decoratorMetadata: true } } })],
  resolve: { conditions: conditions },
  ssr: { resolve: { conditions: conditions } },
};

export default defineConfig({
  test: {
    // The JSON results let .ci/run print one "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.vitest/results.json' }]],
    projects: [
      {
        ...shared,
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: [
            'services/*/src/**/*.test.ts',
            'gateway/src/**/*.test.ts',
            'schema/src/**/*.test.ts',
            'deploy/src/**/*.test.ts',
          ],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        ...shared,
        test: {
          name: 'e2e',
          // After the unit project, with its own worker limit.
          sequence: { groupOrder: 1 },
          include: ['test/**/*.e2e.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // e2e suites each start a platform; two at once is what two cores carry.
          maxWorkers: 2,
        },
      },
      {
        ...shared,
        test: {
          name: 'bench',
          sequence: { groupOrder: 2 },
          include: ['test/bench/**/*.bench.ts'],
          testTimeout: 900_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
