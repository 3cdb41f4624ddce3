export * from './nats-server.js';
export * from './free-port.js';
