export * from './platform.js';
export * from './processes.js';
export * from './seed.js';
export * from './scaled.js';
export * from './otlp.js';
export * from './proxy.js';
