/**
 * What every Fleetgraph process may load without a store or a subgraph server: configuration,
 * logging, traces, metrics, errors, identities and tokens, the NATS bus and its security, health
 * endpoints, shutdown, the subgraph names and the `@jetstream` directive's names. The gateway,
 * the agent and the local cloud import this (`@fleetgraph/kit/core`), so that they never load
 * SQLite, MongoDB, Apollo Server or type-graphql.
 */
export * from './env.js';
export * from './log.js';
export * from './tracing.js';
export * from './metrics.js';
export * from './errors.js';
export * from './lease.js';
export * from './batch.js';
export * from './auth/index.js';
export * from './bus/index.js';
export * from './server/health.js';
export * from './server/http-metrics.js';
export * from './server/observe.js';
export * from './server/shutdown.js';
export * from './subgraphs.js';
export * from './nats-auth/nats-auth.js';
export * from './graphql/stream-directive.js';
