import { createMetricsRegistry, type MetricsRegistry } from '@fleetgraph/kit';
import type { Orchestrator } from '../orchestrator/orchestrator.js';

/**
 * The clusters service's instance metrics, read at each scrape: the orchestrator's queue (clusters
 * due that no replica holds: the same in every replica, as they share the store) and the steps
 * this replica runs. Steps, phases, webhook deliveries and cloud calls are counted in the
 * process's registry as they happen (orchestrator/metrics.ts, webhooks/metrics.ts, @fleetgraph/clouds).
 */
export function createClustersMetrics(orchestrator: Pick<Orchestrator, 'queueDepth' | 'inFlight'>): MetricsRegistry {
  const { registry, gauge } = createMetricsRegistry();
  gauge(
    'fleetgraph_orchestrator_queue_depth',
    'Clusters due for a reconcile step that no replica holds yet (shared by the replicas).',
    () => orchestrator.queueDepth(),
  );
  gauge(
    'fleetgraph_orchestrator_steps_in_flight',
    'Reconcile steps this replica runs now.',
    () => orchestrator.inFlight,
  );
  return registry;
}
