/**
 * Everything of the kit, for services (which use all of it). Processes that need less import a
 * part: `@fleetgraph/kit/core` (no store, no subgraph server), `@fleetgraph/kit/store`,
 * `@fleetgraph/kit/subgraph`.
 */
export * from './core.js';
export * from './store-entry.js';
export * from './subgraph.js';
