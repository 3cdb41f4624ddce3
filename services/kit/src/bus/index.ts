export * from './subjects.js';
export * from './errors.js';
export * from './bus.js';
export * from './key-value.js';
export * from './outbox.js';
