import { readFile } from 'node:fs/promises';
import { subgraphUrlVariable } from '@fleetgraph/kit/core';

/** Reads the composed supergraph SDL checked in under schema/. */
export async function loadSupergraph(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

/**
 * Where a subgraph is reached: `<NAME>_URL` when set (a comma-separated list names its
 * replicas), else the URL composed into the supergraph.
 */
export function subgraphUrls(
  name: string,
  composedUrl: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const urls = (env[subgraphUrlVariable(name)] || composedUrl || '')
    .split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  if (urls.length === 0) throw new Error(`no URL for subgraph ${name}: set ${subgraphUrlVariable(name)}`);
  return urls;
}

/** Whether a fetch failed before any byte reached the server (so that sending it elsewhere is safe). */
function unreachable(error: unknown): boolean {
  const code = (error as { cause?: { code?: string } })?.cause?.code;
  return (
    error instanceof TypeError &&
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'EHOSTUNREACH',
      'ENOTFOUND',
      'EAI_AGAIN',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_SOCKET',
    ].includes(code ?? '')
  );
}

/**
 * A fetch over a subgraph's replicas: requests go round the replicas, and one that cannot be
 * reached is tried on the next (a request that never reached a server is safe to send again),
 * and left out for `downForMs`. With one URL it is plain fetch. Where a balancer (a Kubernetes
 * Service) stands in front of the replicas, one URL is all it needs.
 */
export function failoverFetch(
  urls: readonly string[],
  options: { fetch?: typeof fetch; downForMs?: number; now?: () => number } = {},
): typeof fetch {
  const send = options.fetch ?? fetch;
  if (urls.length === 1) return send;
  const now = options.now ?? Date.now;
  const downUntil = new Map<string, number>();
  let next = 0;
  return async (_url, init) => {
    const start = next++ % urls.length;
    const order = urls.map((_, i) => urls[(start + i) % urls.length]!);
    // Replicas believed up first; the others still, last, rather than failing without trying.
    const up = order.filter((url) => (downUntil.get(url) ?? 0) <= now());
    const candidates = [...up, ...order.filter((url) => !up.includes(url))];
    let failure: unknown;
    for (const url of candidates) {
      try {
        const response = await send(url, init);
        downUntil.delete(url);
        return response;
      } catch (error) {
        if (!unreachable(error)) throw error;
        downUntil.set(url, now() + (options.downForMs ?? 5_000));
        failure = error;
      }
    }
    throw failure;
  };
}

/** A subgraph's /readyz, next to its /graphql. */
export const readinessUrl = (graphqlUrl: string) => new URL('/readyz', graphqlUrl).toString();
