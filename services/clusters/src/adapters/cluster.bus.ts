import { BusError, type Bus } from '@fleetgraph/kit';
import { getCluster } from '@fleetgraph/schema';
import type { ClusterRepository } from './cluster.repo.js';

/** Answers other services' questions about clusters over NATS. */
export function serveClusterRequests(bus: Bus, clusters: ClusterRepository): void {
  bus.serve(getCluster, async ({ tenantId, id }) => {
    const stored = await clusters.getSpec(id);
    if (!stored || stored.spec.tenantId !== tenantId) throw new BusError('NOT_FOUND', `cluster ${id} not found`);
    const { spec } = stored;
    const status = await clusters.getStatus(id);
    return {
      id,
      tenantId,
      projectId: spec.projectId,
      name: spec.name,
      phase: status?.phase ?? 'PENDING',
      cloud: { type: spec.cloud.type, region: spec.cloud.region },
      nodePools: spec.nodePools.map((p) => ({ name: p.name, role: p.role, count: p.count })),
    };
  });
}
