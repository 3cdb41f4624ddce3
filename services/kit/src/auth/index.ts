export * from './identity.js';
export * from './tokens.js';
export * from './oidc.js';
