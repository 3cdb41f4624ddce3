import type { Bus } from '@fleetgraph/kit';
import { clusterNodes } from '@fleetgraph/schema';
import type { HealthIngest } from '../ingest/ingest.js';

/**
 * Answers `health.v1.nodes` (queue group `health`) from the ingest's memory: the nodes a
 * cluster's agent last reported, each Ready or not (its Ready condition TRUE), for the
 * orchestrator's rolling replacements. Every replica holds every cluster's view alike.
 */
export function serveNodes(bus: Bus, ingest: Pick<HealthIngest, 'view'>): { unsubscribe(): void } {
  return bus.serve(clusterNodes, async ({ clusterId }) => {
    const view = ingest.view(clusterId);
    return {
      observedAt: view?.nodesObservedAt ? new Date(view.nodesObservedAt).toISOString() : null,
      nodes: (view?.nodes ?? []).map((node) => ({
        name: node.name,
        ready: node.conditions.some((c) => c.type === 'Ready' && c.status === 'TRUE'),
      })),
    };
  });
}
