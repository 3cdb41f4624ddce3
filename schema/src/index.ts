export * from './contracts/profiles.js';
export * from './contracts/images.js';
export * from './contracts/clusters.js';
export * from './contracts/agent.js';
export * from './contracts/logs.js';
export * from './contracts/agent-reports.js';
export * from './contracts/health.js';
export * from './contracts/apikeys.js';
