export * from './observation.js';
export * from './quantity.js';
export * from './requests.js';
export * from './services.js';
export * from './simulated-observations.js';
