import 'reflect-metadata';

export * from './env.js';
export * from './log.js';
export * from './metrics.js';
export * from './errors.js';
export * from './lease.js';
export * from './auth/index.js';
export * from './bus/index.js';
export * from './graphql/index.js';
export * from './server/index.js';
export * from './store/index.js';
export * from './subgraphs.js';
export * from './nats-auth/nats-auth.js';
