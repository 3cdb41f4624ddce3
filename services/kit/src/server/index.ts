export * from './health.js';
export * from './shutdown.js';
export * from './subgraph-server.js';
