export * from './log-source.js';
export * from './simulated-cluster.js';
export * from './simulated-logs.js';
export * from './stream-sender.js';
export * from './logs.part.js';
