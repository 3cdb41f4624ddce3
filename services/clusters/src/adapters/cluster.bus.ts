import { BusError, confinedUserJwt, type Bus, type NatsKeys } from '@fleetgraph/kit';
import { agentPermissions, getCluster, renewAgentCredentials } from '@fleetgraph/schema';
import type { ClusterRepository } from './cluster.repo.js';

/**
 * Renews a cluster's agent's NATS credentials for its key (the request comes on the cluster's own
 * subject, where only its agent and the platform may publish). A deleted cluster's agent gets
 * none: it is refused once its JWT expires.
 */
export function serveAgentCredentials(
  bus: Bus,
  clusters: ClusterRepository,
  keys: Pick<NatsKeys, 'accountSeed'>,
  ttlSeconds: number,
): void {
  bus.serve(renewAgentCredentials, async ({ clusterId, publicKey }) => {
    const stored = await clusters.getSpec(clusterId);
    const status = stored && (await clusters.getStatus(clusterId));
    if (!stored || stored.spec.deletionRequested || status?.phase === 'DELETED')
      throw new BusError('NOT_FOUND', `cluster ${clusterId} is not managed here`);
    const { spec } = stored;
    const { jwt, expiresAt } = await confinedUserJwt(
      keys,
      publicKey,
      {
        name: `agent-${clusterId}`,
        permissions: agentPermissions(clusterId),
        tags: [`cluster:${clusterId}`, `tenant:${spec.tenantId}`],
      },
      ttlSeconds,
    );
    return { jwt, expiresAt: expiresAt.toISOString() };
  });
}

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
