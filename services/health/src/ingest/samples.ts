import type { ClusterUsageMessage } from '@fleetgraph/schema';
import { seriesOf, UsageScope, usageFigures, type SeriesPoint, type UsageTotals } from '../domain/usage.js';
import type { HealthStore, SampleBucket } from './ports.js';
import { offsetOf, type ClusterRecord } from './records.js';

/**
 * A cluster's usage over time: a sample at each report that observed its nodes, kept in buckets
 * of `bucketMs` per cluster. The open bucket lives on the cluster's record; closed ones wait here
 * until the write-behind writes them; a series reads the stored buckets, those waiting and the
 * open one.
 */
export class UsageSamples {
  #pending: SampleBucket[] = [];

  constructor(
    private readonly store: HealthStore,
    private readonly bucketMs: number,
    private readonly maxSeriesPoints: number,
  ) {}

  /** Closed buckets waiting to be written. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Adds the record's usage now to its open bucket, closing that one first when `now` falls into a new span. */
  add(record: ClusterRecord, now: number): void {
    // Buckets are staggered per cluster: 100,000 of them closing on the same minute would be one burst of writes.
    const span = this.bucketMs;
    const offset = offsetOf(record.id, span);
    const start = Math.floor((now - offset) / span) * span + offset;
    if (record.bucket && record.bucket.start !== start) this.close(record);
    record.bucket ??= { clusterId: record.id, start, end: start + span, samples: [] };
    record.bucket.samples.push(
      now,
      record.workers.coresUsed,
      record.workers.memoryUsedBytes,
      record.all.coresUsed,
      record.all.memoryUsedBytes,
    );
  }

  /** Closes the record's open bucket, for the next write. */
  close(record: ClusterRecord): void {
    if (!record.bucket) return;
    this.#pending.push(record.bucket);
    record.bucket = null;
  }

  /** Takes the closed buckets, to write them. */
  take(): SampleBucket[] {
    const buckets = this.#pending;
    this.#pending = [];
    return buckets;
  }

  /** Drops the closed buckets of a cluster not yet written. */
  forget(clusterId: string): void {
    this.#pending = this.#pending.filter((b) => b.clusterId !== clusterId);
  }

  /**
   * The usage series of a scope over [from, to]: stored buckets, buckets not yet written and the
   * open one (`open`, read once the stored ones are in).
   */
  async series(
    clusterId: string,
    scope: UsageScope,
    from: number,
    to: number,
    open: () => readonly number[] | undefined,
  ): Promise<SeriesPoint[]> {
    const stored = await this.store.buckets(clusterId, from, to);
    const inMemory = this.#pending.filter((b) => b.clusterId === clusterId && b.end > from).map((b) => b.samples);
    const current = open();
    return seriesOf([...stored, ...inMemory, ...(current ? [current] : [])], scope, from, to, this.maxSeriesPoints);
  }
}

/** The usage samples published at a report: one message per scope, its series holding this one sample. */
export function usageSamplesOf(record: ClusterRecord, now: number): ClusterUsageMessage[] {
  const time = new Date(now).toISOString();
  return [UsageScope.WORKERS, UsageScope.ALL].map((scope) => {
    const totals = scope === UsageScope.WORKERS ? record.workers : record.all;
    return usageMessage(record.tenantId, record.id, scope, totals, time, false, [
      { time, cpuCores: totals.coresUsed, memoryBytes: totals.memoryUsedBytes },
    ]);
  });
}

/** A ClusterUsage message of one scope. */
export function usageMessage(
  tenantId: string,
  clusterId: string,
  scope: UsageScope,
  totals: UsageTotals,
  time: string,
  stale: boolean,
  series: ClusterUsageMessage['series'],
): ClusterUsageMessage {
  return {
    tenantId,
    clusterId,
    scope,
    time,
    ...usageFigures(totals),
    observedAt: time,
    stale,
    series,
  };
}
