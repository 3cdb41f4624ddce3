import { createMetricsRegistry } from '@fleetgraph/kit';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { IngestStats } from '../ingest/ingest.js';

export interface HealthMetricsSource {
  ingest(): IngestStats;
  /** Clusters the registry knows. */
  registered(): number;
  /** Health changes that could not be published. */
  publishFailures(): number;
}

/**
 * The health service's Prometheus metrics, read from the ingest at each scrape: reports by
 * outcome (the dropped ones by why), health changes, samples, writes, and the lag from a
 * report being sent to the cluster's health being updated.
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
  new Gauge({
    name: 'fleetgraph_health_report_lag_ms',
    help: 'Milliseconds from an agent sending a report to the cluster health being updated, over the last 8192 reports.',
    labelNames: ['quantile'],
    registers: [registry],
    collect() {
      const { lag } = source.ingest();
      for (const [quantile, value] of [
        ['0.5', lag.p50],
        ['0.9', lag.p90],
        ['0.99', lag.p99],
        ['1', lag.max],
      ] as const)
        this.set({ quantile }, value);
    },
  });
  return registry;
}
