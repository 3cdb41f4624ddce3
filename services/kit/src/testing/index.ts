export * from './nats-server.js';
export * from './nats-cluster.js';
export * from './free-port.js';
export * from './tokens.js';
export * from './raw-nats.js';
