export * from './health.js';
export * from './http-metrics.js';
export * from './observe.js';
export * from './shutdown.js';
export * from './subgraph-server.js';
