export * from './source.js';
export * from './simulated.js';
export * from './agent.js';
export * from './parts.js';
export * from './logs/index.js';
export * from './observe/index.js';
export * from './reports.js';
