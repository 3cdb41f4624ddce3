export { buildClustersSchema } from './schema/index.js';
export { ClusterRepository, type ClusterStatus } from './adapters/cluster.repo.js';
export { ProviderRegistry } from './adapters/providers.js';
export { Orchestrator, type OrchestratorOptions, type OrchestratorStats } from './orchestrator/orchestrator.js';
export { planPool } from './domain/machines.js';
export type { ClusterSpec, NodePool } from './domain/cluster.js';
