import type { Logger } from '@fleetgraph/kit';
import { FLEET_HEALTH_EVERY_MS, type AgentReport } from '@fleetgraph/schema';
import {
  afterReport,
  DEFAULT_POLICY,
  evaluate,
  findingsOf,
  HealthFactor,
  HealthStatus,
  sameHealth,
  type Health,
  type HealthPolicy,
} from '../domain/health.js';
import { UsageScope, usageFacts, usageOf, type SeriesPoint } from '../domain/usage.js';
import { agentReportCheck, isReportSubjectOf } from './checks.js';
import { Deadlines } from './deadlines.js';
import { applyUsage, Interner, sameOrNew, shapeOf, updateNodeViews } from './nodes.js';
import type { HealthPublisher, HealthStore } from './ports.js';
import {
  fleetHealthMessage,
  healthMessage,
  newRecord,
  restoredRecord,
  viewOf,
  type ClusterRecord,
  type ClusterView,
} from './records.js';
import type { ClusterRegistry } from './registry.js';
import { UsageSamples, usageSamplesOf } from './samples.js';
import { WriteBehind } from './write-behind.js';

export type { ClusterView } from './records.js';

/** What became of a report. Everything but `accepted` changed nothing. */
export const ReportOutcome = {
  accepted: 'accepted',
  /** Not JSON, or not the report schema. */
  malformed: 'malformed',
  /** The subject names another cluster than the body. */
  mismatched_subject: 'mismatched_subject',
  /** No such cluster (never created, or deleted). */
  unknown_cluster: 'unknown_cluster',
  /** The cluster belongs to another tenant than the report says. */
  foreign_tenant: 'foreign_tenant',
  /** Older than (or the same as) a report already taken from the same agent run. */
  out_of_order: 'out_of_order',
} as const;
export type ReportOutcome = (typeof ReportOutcome)[keyof typeof ReportOutcome];

export interface IngestOptions {
  registry: ClusterRegistry;
  store: HealthStore;
  publisher: HealthPublisher;
  log: Logger;
  /** @default DEFAULT_POLICY */
  policy?: HealthPolicy;
  /** @default Date.now */
  now?: () => number;
  /** Samples are written to the store in buckets of this span. @default 5 minutes */
  sampleBucketMs?: number;
  /**
   * A cluster's health is written when it changes and at least this often (its heartbeat);
   * its nodes and services when they change and at least 6 times less often (their usage). @default 5 minutes
   */
  persistEveryMs?: number;
  /** Most points a series has; longer windows are averaged. @default 500 */
  maxSeriesPoints?: number;
  /** Resolution of deadlines: `tick` should be called this often. @default 1000 */
  tickMs?: number;
  /**
   * Whether this replica writes to the store. Every replica takes every report and judges it
   * alike (so that each answers the same); one, the leader, writes and publishes. @default always
   */
  writing?: () => boolean;
  /**
   * Told, for each report taken, the seconds from the agent sending it to the cluster's health
   * being updated (the `fleetgraph_health_report_lag_seconds` histogram). @default nothing
   */
  lag?: { observe(seconds: number): void };
}

/** The counters behind /metrics. */
export interface IngestStats {
  received: number;
  outcomes: Record<ReportOutcome, number>;
  clusters: number;
  healthChanges: number;
  samplesPublished: number;
  writes: number;
  writeErrors: number;
  pendingWrites: number;
  deadlines: number;
}

/** The clusters this process judges, by health status and by failing check. */
export interface HealthCounts {
  byStatus: Record<HealthStatus, number>;
  /** Clusters with a failing check of this factor (HEARTBEAT: the agent went silent). */
  failing: Record<HealthFactor, number>;
}

const decoder = new TextDecoder();

/**
 * Takes agent reports and keeps every cluster's health, nodes, services and usage, written for
 * a large fleet:
 *
 * - a report is validated, checked against the cluster registry (no request to another
 *   service) and applied in one synchronous step: the cluster's health is re-evaluated from its
 *   own state only, and a change is published at once;
 * - deadlines (a heartbeat turning late, a check crossing its threshold) sit in one timer wheel;
 * - writes are batched: a cluster is written when its health, nodes or services change, else
 *   every `persistEveryMs`, and its usage samples in buckets of `sampleBucketMs`, all by a
 *   flush every second or so, off the report path.
 *
 * It holds the clusters it serves in memory: one active instance per set of clusters.
 */
export class HealthIngest {
  readonly #o: Required<Omit<IngestOptions, 'policy' | 'now' | 'lag'>>;
  readonly #lag: IngestOptions['lag'];
  readonly #policy: HealthPolicy;
  readonly #now: () => number;
  readonly #records = new Map<string, ClusterRecord>();
  readonly #deadlines: Deadlines;
  readonly #interner = new Interner();
  readonly #samples: UsageSamples;
  readonly #writes: WriteBehind;
  readonly #stats = {
    received: 0,
    outcomes: Object.fromEntries(Object.keys(ReportOutcome).map((k) => [k, 0])) as Record<ReportOutcome, number>,
    healthChanges: 0,
    samplesPublished: 0,
  };
  #lastMalformedLog = 0;

  constructor(options: IngestOptions) {
    this.#o = {
      sampleBucketMs: 5 * 60_000,
      persistEveryMs: 5 * 60_000,
      maxSeriesPoints: 500,
      tickMs: 1000,
      writing: () => true,
      ...options,
    };
    this.#policy = options.policy ?? DEFAULT_POLICY;
    this.#lag = options.lag;
    this.#now = options.now ?? Date.now;
    this.#deadlines = new Deadlines(this.#o.tickMs);
    this.#samples = new UsageSamples(this.#o.store, this.#o.sampleBucketMs, this.#o.maxSeriesPoints);
    this.#writes = new WriteBehind({
      store: this.#o.store,
      log: this.#o.log,
      now: this.#now,
      records: this.#records,
      samples: this.#samples,
      persistEveryMs: this.#o.persistEveryMs,
      writing: this.#o.writing,
    });
  }

  /**
   * This replica became the one that writes and publishes: what it holds is written again, and
   * the healths that changed in the last `sinceMs` (while the role may have had no holder) are
   * published again, so that a watcher misses no change across the handover (it may see one twice).
   */
  tookOver(sinceMs: number): void {
    const since = this.#now() - sinceMs;
    for (const record of this.#records.values()) {
      this.#writes.rewrite(record);
      if (record.changedAt >= since) this.#o.publisher.health(healthMessage(record));
    }
  }

  get policy(): HealthPolicy {
    return this.#policy;
  }

  /** Takes one raw message from `agent.v1.<clusterId>.report`, validating it. */
  accept(subject: string, data: Uint8Array): ReportOutcome {
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(data));
    } catch (error) {
      return this.reject(subject, `body is not JSON: ${(error as Error).message}`);
    }
    const parsed = agentReportCheck.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.reject(subject, `${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
    }
    return this.acceptReport(subject, parsed.data);
  }

  /** Takes one validated report received on `subject` (as the bus's listener hands it over). */
  acceptReport(subject: string, report: AgentReport): ReportOutcome {
    this.#stats.received++;
    const outcome = this.#apply(subject, report);
    this.#stats.outcomes[outcome]++;
    return outcome;
  }

  /** Counts a message of a report subject that is not a report (not JSON, not of the schema), dropped. */
  reject(subject: string, error: string): ReportOutcome {
    this.#stats.received++;
    this.#stats.outcomes.malformed++;
    const now = Date.now();
    // A flood of bad reports must not become a flood of log lines.
    if (now - this.#lastMalformedLog > 10_000) {
      this.#lastMalformedLog = now;
      this.#o.log.warn({ subject, error, dropped: this.#stats.outcomes.malformed }, 'malformed agent report dropped');
    }
    return ReportOutcome.malformed;
  }

  #apply(subject: string, report: AgentReport): ReportOutcome {
    if (!isReportSubjectOf(subject, report.clusterId)) return ReportOutcome.mismatched_subject;
    const cluster = this.#o.registry.get(report.clusterId);
    if (!cluster) return ReportOutcome.unknown_cluster;
    if (cluster.tenantId !== report.tenantId) return ReportOutcome.foreign_tenant;
    let record = this.#records.get(cluster.id);
    if (record && record.agentStartedAt === report.agentStartedAt && report.seq <= record.seq)
      return ReportOutcome.out_of_order;

    const now = this.#now();
    const first = record === undefined;
    if (!record) {
      record = newRecord(cluster, now, this.#o.persistEveryMs, this.#policy);
      this.#records.set(record.id, record);
    }
    record.tenantId = cluster.tenantId;
    record.projectId = cluster.projectId;
    // The same run's string is kept: one string per cluster rather than a new one every report.
    if (record.agentStartedAt !== report.agentStartedAt) record.agentStartedAt = report.agentStartedAt;
    record.seq = report.seq;
    // A full report brings the nodes; a compact one their numbers, when it is about the same nodes.
    let observed = false;
    if (report.nodes) {
      record.nodes = updateNodeViews(record.nodes, report.nodes, this.#interner);
      observed = true;
    } else if (report.usage) {
      observed = applyUsage(record.nodes, report.usage);
    }
    // The first usage goes to the fleet at once, not with the next health change or 10 s later.
    const firstUsage = observed && record.nodesObservedAt === null;
    if (observed) {
      record.nodesObservedAt = now;
      Object.assign(record.workers, usageOf(record.nodes, UsageScope.WORKERS));
      Object.assign(record.all, usageOf(record.nodes, UsageScope.ALL));
    }
    if (report.services) record.services = sameOrNew(record.services, report.services);
    const findings = observed ? findingsOf(record.nodes, usageFacts(record.nodes), this.#policy) : null;
    record.state = afterReport(record.state, now, report.intervalMs, findings);
    this.#evaluate(record, now);
    if (observed) {
      this.#samples.add(record, now);
      this.#publishUsage(record, now, firstUsage);
    }
    const shape = report.nodes || report.services ? shapeOf(record.nodes, record.services) : record.shape;
    this.#writes.reported(record, now, shape, first);
    this.#lag?.observe(Math.max(0, now - Date.parse(report.sentAt)) / 1000);
    return ReportOutcome.accepted;
  }

  /** Re-evaluates a cluster's health; publishes and schedules a write when it changed. */
  #evaluate(record: ClusterRecord, now: number): void {
    const health = evaluate(record.state, now, this.#policy);
    this.#deadlines.set(record.id, health.nextEvaluationAt);
    // Unchanged, the old object stays (nothing new for the old generation to collect).
    if (sameHealth(record.health, health)) return;
    record.health = health;
    record.changedAt = now;
    this.#writes.healthChanged(record);
    this.#stats.healthChanges++;
    try {
      this.#o.publisher.health(healthMessage(record));
    } catch (error) {
      this.#o.log.error({ err: error, clusterId: record.id }, 'could not publish a health change');
    }
    this.#publishFleet(record, now);
  }

  /** Sends the cluster's fleet health (a health change, or new usage at most every FLEET_HEALTH_EVERY_MS). */
  #publishFleet(record: ClusterRecord, now: number): void {
    record.fleetSentAt = now;
    try {
      this.#o.publisher.fleet(fleetHealthMessage(record));
    } catch (error) {
      this.#o.log.error({ err: error, clusterId: record.id }, 'could not publish a fleet health');
    }
  }

  #publishUsage(record: ClusterRecord, now: number, firstUsage: boolean): void {
    // (A health change of this very report sent it already.)
    const due = firstUsage ? record.fleetSentAt < now : now - record.fleetSentAt >= FLEET_HEALTH_EVERY_MS;
    if (due) this.#publishFleet(record, now);
    for (const message of usageSamplesOf(record, now)) {
      try {
        this.#o.publisher.usage(message);
        this.#stats.samplesPublished++;
      } catch (error) {
        this.#o.log.error({ err: error, clusterId: record.id }, 'could not publish a usage sample');
      }
    }
  }

  /** Re-evaluates the clusters whose deadline has passed. Called by a timer. */
  tick(now = this.#now()): void {
    for (const id of this.#deadlines.take(now)) {
      const record = this.#records.get(id);
      if (record) this.#evaluate(record, now);
    }
  }

  /** A cluster's current view; null when it never reported. */
  view(clusterId: string): ClusterView | null {
    const record = this.#records.get(clusterId);
    return record ? viewOf(record) : null;
  }

  /** The usage series of a scope over the last `windowMs`: stored buckets, buckets not yet written and the open one. */
  async series(clusterId: string, scope: UsageScope, windowMs: number): Promise<SeriesPoint[]> {
    const now = this.#now();
    return this.#samples.series(
      clusterId,
      scope,
      now - windowMs,
      now,
      () => this.#records.get(clusterId)?.bucket?.samples,
    );
  }

  /** Counts by status of the given clusters (those that never reported are UNKNOWN). */
  statusCounts(clusterIds: Iterable<string>): Record<Health['status'], number> {
    const counts = { HEALTHY: 0, PROGRESSING: 0, UNHEALTHY: 0, UNKNOWN: 0 };
    for (const id of clusterIds) counts[this.#records.get(id)?.health.status ?? 'UNKNOWN']++;
    return counts;
  }

  /** Forgets a deleted cluster, here and in the store. */
  async forget(clusterId: string): Promise<void> {
    const record = this.#records.get(clusterId);
    if (record) this.#o.publisher.forget({ tenantId: record.tenantId, projectId: record.projectId, clusterId });
    this.#records.delete(clusterId);
    this.#deadlines.delete(clusterId);
    this.#writes.forget(clusterId);
    await this.#o.store.remove(clusterId);
  }

  /** Forgets every cluster the registry does not know (deleted while this service was down). */
  async prune(): Promise<number> {
    const gone = [...this.#records.keys()].filter((id) => !this.#o.registry.get(id));
    for (const id of gone) await this.forget(id);
    return gone.length;
  }

  /** Loads the stored clusters, re-evaluates them now and publishes what changed meanwhile. */
  async restore(): Promise<number> {
    const now = this.#now();
    let count = 0;
    for await (const { health, version, nodes } of this.#o.store.loadAll()) {
      const record = restoredRecord(health, version, nodes, this.#interner);
      this.#records.set(record.id, record);
      this.#evaluate(record, now);
      count++;
    }
    return count;
  }

  /** Writes what changed: closed sample buckets, then changed clusters. One flush at a time. */
  flush(): Promise<void> {
    return this.#writes.flush();
  }

  /** Drops samples older than the retention. */
  dropSamplesBefore(time: number): Promise<number> {
    return this.#o.store.dropSamplesBefore(time);
  }

  /** Writes everything not yet written, open sample buckets included (at shutdown). */
  drain(): Promise<void> {
    return this.#writes.drain();
  }

  /** Clusters by health status and failing check: one pass over every cluster (read at each scrape). */
  healthCounts(): HealthCounts {
    const byStatus = Object.fromEntries(Object.keys(HealthStatus).map((s) => [s, 0])) as Record<HealthStatus, number>;
    const failing = Object.fromEntries(Object.keys(HealthFactor).map((f) => [f, 0])) as Record<HealthFactor, number>;
    for (const record of this.#records.values()) {
      const { status, reasons } = record.health;
      byStatus[status]++;
      // Each factor once per cluster (a cluster may fail several checks of one factor).
      for (let i = 0; i < reasons.length; i++) {
        const factor = reasons[i]!.factor;
        let counted = false;
        for (let k = 0; k < i && !counted; k++) counted = reasons[k]!.factor === factor;
        if (!counted) failing[factor]++;
      }
    }
    return { byStatus, failing };
  }

  stats(): IngestStats {
    return {
      ...this.#stats,
      outcomes: { ...this.#stats.outcomes },
      ...this.#writes.stats,
      clusters: this.#records.size,
      pendingWrites: this.#writes.pending,
      deadlines: this.#deadlines.size,
    };
  }
}
