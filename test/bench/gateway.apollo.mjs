import { readFileSync } from 'node:fs';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';

/**
 * Stock @apollo/gateway + @apollo/server, as its documentation sets it up, over the supergraph at
 * SUPERGRAPH_PATH (the platform's, with the running subgraphs' URLs): a peer of Fleetgraph's
 * gateway in gateway.bench.ts. It knows nothing of Fleetgraph's sign-in: the benchmark's client
 * sends a ready-made internal identity header, which a RemoteGraphQLDataSource copies onto every
 * subgraph request. Everything else is left at its defaults (the data source's make-fetch-happen
 * fetcher included). Prints `{"msg":"listening","url":...}` once it serves, as the services do
 * (test/src/processes.ts waits for that line).
 */
const IDENTITY_HEADER = 'x-fleetgraph-identity';

class IdentityCopyingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.identity) request.http?.headers.set(IDENTITY_HEADER, context.identity);
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(process.env.SUPERGRAPH_PATH, 'utf8'),
  buildService: ({ url }) => new IdentityCopyingDataSource({ url }),
});
const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(process.env.PORT ?? 0) },
  context: async ({ req }) => ({ identity: req.headers[IDENTITY_HEADER] }),
});
console.log(JSON.stringify({ msg: 'listening', url }));

process.once('SIGTERM', () => {
  server.stop().finally(() => process.exit(0));
});
