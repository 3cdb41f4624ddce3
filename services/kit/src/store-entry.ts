/** The store: one interface, SQLite by default, MongoDB in production (`@fleetgraph/kit/store`). */
export * from './store/index.js';
export * from './leadership.js';
