import { readFile } from 'node:fs/promises';
import { subgraphUrlVariable } from '@fleetgraph/kit';

/** Reads the composed supergraph SDL checked in under schema/. */
export async function loadSupergraph(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

/**
 * Where a subgraph is reached: `<NAME>_URL` when set, else the URL composed into the supergraph.
 */
export function subgraphUrl(name: string, composedUrl: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const url = env[subgraphUrlVariable(name)] || composedUrl;
  if (!url) throw new Error(`no URL for subgraph ${name}: set ${subgraphUrlVariable(name)}`);
  return url;
}

/** A subgraph's /readyz, next to its /graphql. */
export const readinessUrl = (graphqlUrl: string) => new URL('/readyz', graphqlUrl).toString();
