import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createGatewayRuntime } from '@graphql-hive/gateway';

/**
 * Hive Gateway (@graphql-hive/gateway) over the supergraph at SUPERGRAPH_PATH (the platform's, with
 * the running subgraphs' URLs): a peer of Fleetgraph's gateway in gateway.bench.ts. Its runtime
 * served by Node's HTTP server, as its CLI (`hive-gateway supergraph`) does with one worker, and
 * left at its defaults but for one thing: it knows nothing of Fleetgraph's sign-in, so the
 * benchmark's client sends a ready-made internal identity header, which `propagateHeaders` passes
 * on to every subgraph request.
 *
 * HIVE_DEDUPLICATION=off turns off the deduplication of identical in-flight subgraph requests (the
 * HTTP transport's `deduplicateInflightRequests`, on by default): with it, identical queries
 * arriving together share their subgraph requests.
 *
 * Prints `{"msg":"listening","url":...}` once it serves, as the services do (test/src/processes.ts
 * waits for that line).
 */
const IDENTITY_HEADER = 'x-fleetgraph-identity';
const deduplication = process.env.HIVE_DEDUPLICATION !== 'off';

const runtime = createGatewayRuntime({
  // The SDL itself (a string that is no path nor URL is read as SDL): nothing polled or watched.
  supergraph: readFileSync(process.env.SUPERGRAPH_PATH, 'utf8'),
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => {
      const identity = request.headers.get(IDENTITY_HEADER);
      return identity ? { [IDENTITY_HEADER]: identity } : {};
    },
  },
  ...(deduplication ? {} : { transportEntries: { '*.http': { options: { deduplicateInflightRequests: false } } } }),
});
await runtime.getSchema();

const server = createServer(runtime);
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${port}/graphql`, deduplication }));
});

process.once('SIGTERM', () => {
  server.close();
  Promise.resolve(runtime.dispose()).finally(() => process.exit(0));
});
