export { buildClustersSchema } from './schema/index.js';
export { ClusterRepository } from './adapters/cluster.repo.js';
export { Orchestrator } from './orchestrator/orchestrator.js';
export { planPool } from './domain/machines.js';
