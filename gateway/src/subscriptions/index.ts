export * from './binding.js';
export * from './cursor.js';
export * from './hub.js';
export * from './metrics.js';
export * from './server.js';
export * from './source.js';
export * from './transport.js';
