export * from './client.js';
export * from './documents.js';
export * from './manifest.js';
export * from './generated/graphql.js';
