import type { FleetClusterMessage } from '@fleetgraph/schema';
import type { ClusterSpec } from './cluster.js';
import { headlineCondition } from './conditions.js';
import type { ClusterStatus } from './status.js';

/** A cluster as the fleet overview shows it (`clusters.v1.fleet`), from its definition and status. */
export function fleetEntry(
  spec: ClusterSpec,
  status: Pick<ClusterStatus, 'phase' | 'conditions' | 'observedGeneration'>,
  now: Date,
): FleetClusterMessage {
  return {
    tenantId: spec.tenantId,
    projectId: spec.projectId,
    id: spec.id,
    name: spec.name,
    phase: status.phase,
    cloud: spec.cloud.type,
    region: spec.cloud.region,
    nodeCount: spec.nodePools.reduce((sum, pool) => sum + pool.count, 0),
    generation: spec.generation,
    observedGeneration: status.observedGeneration,
    condition: headlineCondition(status.conditions),
    updatedAt: now.toISOString(),
  };
}
