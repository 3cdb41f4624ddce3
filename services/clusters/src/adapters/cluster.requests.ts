import type { Bus } from '@fleetgraph/kit';
import { applyPacks, clusterNodes, getProfile, resolveImage } from '@fleetgraph/schema';
import type { ClusterRequests } from '../orchestrator/ports.js';

/**
 * What the orchestrator asks other services, over NATS: the profiles service (`profiles.v1.get`),
 * the images service (`images.v1.resolve`), each cluster's agent (`agent.v1.<clusterId>.apply-packs`)
 * and the health service (`health.v1.nodes`: which nodes are Ready).
 */
export function natsClusterRequests(bus: Bus): ClusterRequests {
  return {
    profile: (request) => bus.request(getProfile, request),
    // A copy or build is never waited for: the images service answers with the image's state at once.
    resolveImage: (request) => bus.request(resolveImage, request, { timeoutMs: 15_000 }),
    // The agent answers once every pack is installed.
    applyPacks: (request) => bus.request(applyPacks, request, { timeoutMs: 30_000 }),
    nodes: (request) => bus.request(clusterNodes, request, { timeoutMs: 5_000 }),
  };
}
