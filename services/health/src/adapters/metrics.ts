import { createMetricsRegistry, defineHistogram } from '@fleetgraph/kit';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { HealthCounts, IngestStats } from '../ingest/ingest.js';

/** Seconds from an agent sending a report to the cluster's health being updated (the ingest's `lag`). */
export const reportLag = defineHistogram({
  name: 'fleetgraph_health_report_lag_seconds',
  help: 'Seconds from an agent sending a report to the cluster health being updated by this process.',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
});

export interface HealthMetricsSource {
  ingest(): IngestStats;
  /** The clusters judged here, by status and failing check. */
  health(): HealthCounts;
  /** Clusters the registry knows. */
  registered(): number;
  /** Health changes that could not be published. */
  publishFailures(): number;
}

/**
 * The health service's instance metrics, read from the ingest at each scrape: reports by outcome
 * (the dropped ones by why), health changes, samples, writes, clusters by health status and by
 * failing check. The lag from a report being sent to the cluster's health being updated is a
 * histogram of the process's registry (`reportLag`), observed by the ingest.
 */
export function createHealthMetrics(source: HealthMetricsSource): Registry {
  const { registry, gauge, counter } = createMetricsRegistry();
  new Counter({
    name: 'fleetgraph_health_reports_total',
    help: 'Agent reports received, by outcome: accepted, or why it was dropped (malformed, unknown_cluster, foreign_tenant, mismatched_subject, out_of_order).',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [outcome, count] of Object.entries(source.ingest().outcomes)) this.inc({ outcome }, count);
    },
  });
  counter('fleetgraph_health_changes_total', 'Cluster health changes published.', () => source.ingest().healthChanges);
  counter(
    'fleetgraph_health_samples_published_total',
    'Usage samples published (one per report and scope).',
    () => source.ingest().samplesPublished,
  );
  counter('fleetgraph_health_store_writes_total', 'Documents written to the store.', () => source.ingest().writes);
  counter(
    'fleetgraph_health_store_write_errors_total',
    'Writes to the store that failed (retried at the next flush).',
    () => source.ingest().writeErrors,
  );
  counter('fleetgraph_health_publish_failures_total', 'Health changes that could not be published.', () =>
    source.publishFailures(),
  );
  gauge(
    'fleetgraph_health_clusters_reporting',
    'Clusters with a reported state in this process.',
    () => source.ingest().clusters,
  );
  gauge('fleetgraph_health_clusters_registered', 'Clusters known from lifecycle events.', () => source.registered());
  gauge(
    'fleetgraph_health_pending_writes',
    'Clusters and sample buckets waiting for the next flush.',
    () => source.ingest().pendingWrites,
  );
  gauge('fleetgraph_health_deadlines', 'Clusters with a pending re-evaluation timer.', () => source.ingest().deadlines);
  // One pass over the clusters per scrape, shared by both gauges (collected in this order).
  let counts: HealthCounts | undefined;
  new Gauge({
    name: 'fleetgraph_health_clusters',
    help: 'Clusters judged by this process, by health status (HEALTHY, PROGRESSING, UNHEALTHY, UNKNOWN).',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      counts = source.health();
      for (const [status, count] of Object.entries(counts.byStatus)) this.set({ status }, count);
    },
  });
  new Gauge({
    name: 'fleetgraph_health_clusters_failing',
    help: 'Clusters with a failing health check, by factor (HEARTBEAT: no report from the agent in time; NODE_CONDITION; METRICS).',
    labelNames: ['factor'],
    registers: [registry],
    collect() {
      const { failing } = counts ?? source.health();
      counts = undefined;
      for (const [factor, count] of Object.entries(failing)) this.set({ factor }, count);
    },
  });
  return registry;
}
