export * from './contracts/profiles.js';
