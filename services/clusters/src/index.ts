export { buildClustersSchema } from './schema/index.js';
export { ClusterRepository } from './adapters/cluster.repo.js';
export { natsClusterRequests } from './adapters/cluster.requests.js';
export { ProviderRegistry } from './adapters/providers.js';
export type { ClusterStatus } from './domain/status.js';
export type { Announcement, CloudProviders, ClusterRequests, ClusterStatusStore } from './orchestrator/ports.js';
export { Orchestrator, type OrchestratorOptions, type OrchestratorStats } from './orchestrator/orchestrator.js';
export { planPool } from './domain/machines.js';
export type { ClusterSpec, NodePool } from './domain/cluster.js';
