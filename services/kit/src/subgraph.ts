/**
 * What a subgraph service adds to the core: type-graphql schemas, scalars, the subgraph server
 * (`@fleetgraph/kit/subgraph`).
 */
import 'reflect-metadata';

export * from './graphql/index.js';
export * from './server/subgraph-server.js';
