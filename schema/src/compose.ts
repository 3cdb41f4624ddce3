import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { composeServices } from '@apollo/composition';
import { SUBGRAPHS } from '@fleetgraph/kit/core';
import { parse, printSchema } from 'graphql';

/**
 * Prints each subgraph's SDL from its code and composes the supergraph into schema/, with the API
 * schema (what clients see: the supergraph without its federation directives) in api.graphql.
 * With --check, writes nothing and fails when schema/ differs from the code.
 *
 * Each subgraph is printed by its own process (`services/<name>/dist/print-schema.js`): type-graphql
 * keeps its metadata in one global store, so two subgraphs must not share a process.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const schemaDir = `${root}schema/`;
const run = promisify(execFile);

async function printSubgraph(name: string): Promise<string> {
  const { stdout } = await run(process.execPath, [`${root}services/${name}/dist/print-schema.js`], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout.endsWith('\n') ? stdout : `${stdout}\n`;
}

async function main(check: boolean) {
  const printed = await Promise.all(SUBGRAPHS.map(async (s) => ({ ...s, sdl: await printSubgraph(s.name) })));
  const result = composeServices(
    printed.map((s) => ({ name: s.name, url: `http://127.0.0.1:${s.port}/graphql`, typeDefs: parse(s.sdl) })),
  );
  if (result.errors) {
    for (const error of result.errors) console.error(`composition error: ${error.message}`);
    process.exit(1);
  }
  const files = new Map<string, string>(printed.map((s) => [`${s.name}.graphql`, s.sdl]));
  files.set(
    'supergraph.graphql',
    result.supergraphSdl.endsWith('\n') ? result.supergraphSdl : `${result.supergraphSdl}\n`,
  );

  files.set('api.graphql', `${printSchema(result.schema.toAPISchema().toGraphQLJSSchema())}\n`);

  const stale: string[] = [];
  for (const [file, content] of files) {
    const current = await readFile(schemaDir + file, 'utf8').catch(() => null);
    if (current === content) continue;
    stale.push(file);
    if (!check) await writeFile(schemaDir + file, content);
  }
  if (check && stale.length > 0) {
    console.error(
      `schema/ is out of date with the code: ${stale.join(', ')}. Run \`pnpm schema\` and commit the result.`,
    );
    process.exit(1);
  }
  for (const hint of result.hints ?? []) console.warn(`composition hint: ${hint.message}`);
  console.log(
    check ? 'schema/ matches the code' : stale.length ? `wrote ${stale.join(', ')}` : 'schema/ was up to date',
  );
}

await main(process.argv.includes('--check'));
