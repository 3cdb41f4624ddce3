export * from './scalars.js';
export * from './common.js';
export * from './build-subgraph.js';
