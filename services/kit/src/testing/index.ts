export * from './nats-server.js';
export * from './nats-cluster.js';
export * from './free-port.js';
export * from './tokens.js';
export * from './raw-nats.js';
export * from './jwks.js';
export * from './mongodb.js';
