import { gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

/** The JavaScript the browser downloads, gzipped, must stay under this (the budget). */
const JS_BUDGET_BYTES = 300 * 1024;

/** Prints the gzipped size of the shipped JavaScript and fails the build over the budget. */
function jsBudget(): Plugin {
  return {
    name: 'fleetgraph-js-budget',
    apply: 'build',
    generateBundle(_options, bundle) {
      let total = 0;
      for (const file of Object.values(bundle))
        if (file.type === 'chunk') total += gzipSync(file.code, { level: 9 }).length;
      const kb = (total / 1024).toFixed(1);
      this.info(`JavaScript shipped: ${kb} KB gzipped (budget ${JS_BUDGET_BYTES / 1024} KB)`);
      console.log(`\n  dashboard JavaScript: ${kb} KB gzipped (budget ${JS_BUDGET_BYTES / 1024} KB)`);
      if (total > JS_BUDGET_BYTES) this.error(`the dashboard's JavaScript is ${kb} KB gzipped, over its budget`);
    },
  };
}

export default defineConfig({
  // JSX through Preact's automatic runtime (tsconfig's jsxImportSource), no Babel preset needed.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  resolve: { alias: { react: 'preact/compat', 'react-dom': 'preact/compat' } },
  build: { target: 'es2022', sourcemap: true, assetsDir: 'assets', emptyOutDir: true },
  plugins: [jsBudget()],
  // `pnpm --filter @fleetgraph/dashboard dev`: the gateway of `pnpm start` behind Vite's dev server.
  server: {
    proxy: {
      '/graphql': { target: 'http://127.0.0.1:4000', ws: true },
      '/dashboard/config.json': 'http://127.0.0.1:4000',
      '/logs': 'http://127.0.0.1:4000',
    },
  },
});
