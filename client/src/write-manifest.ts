import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Kind, type DocumentNode } from 'graphql';
import * as generated from './generated/graphql.js';
import { buildManifest } from './manifest.js';

/**
 * Writes client/persisted-query-manifest.json, the trusted documents of every operation in
 * client/operations (as generated); with --check, writes nothing and fails when it is stale.
 */
const file = fileURLToPath(new URL('../persisted-query-manifest.json', import.meta.url));

const isOperation = (value: unknown): value is DocumentNode =>
  typeof value === 'object' &&
  value !== null &&
  (value as DocumentNode).kind === Kind.DOCUMENT &&
  (value as DocumentNode).definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION);

const manifest = await buildManifest(Object.values(generated).filter(isOperation));
const content = `${JSON.stringify(manifest, null, 2)}\n`;
const current = await readFile(file, 'utf8').catch(() => null);
if (process.argv.includes('--check')) {
  if (current !== content) {
    console.error('client/persisted-query-manifest.json is out of date: run `pnpm codegen` and commit the result.');
    process.exit(1);
  }
  console.log('client/persisted-query-manifest.json matches the operations');
} else if (current !== content) {
  await writeFile(file, content);
  console.log(`wrote client/persisted-query-manifest.json (${manifest.operations.length} operations)`);
}
