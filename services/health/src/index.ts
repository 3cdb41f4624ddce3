export { buildHealthSchema } from './schema/index.js';
export * from './domain/health.js';
export * from './domain/usage.js';
export { HealthIngest, ReportOutcome, type IngestStats, type ClusterView } from './ingest/ingest.js';
export { ClusterRegistry } from './ingest/registry.js';
export { HealthRepository } from './adapters/health.repo.js';
