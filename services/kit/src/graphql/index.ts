export * from './scalars.js';
export * from './common.js';
export * from './build-subgraph.js';
export * from './subscription-binding.js';
