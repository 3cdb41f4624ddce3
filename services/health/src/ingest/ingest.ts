import type { Logger } from '@fleetgraph/kit';
import { agentReport, agentReportSchema, type AgentReport, type ClusterHealthMessage, type ClusterUsageMessage, type ReportedService } from '@fleetgraph/schema';
import { afterReport, DEFAULT_POLICY, evaluate, findingsOf, INITIAL_STATE, sameHealth, type Health, type HealthPolicy, type HealthState } from '../domain/health.js';
import { seriesOf, UsageScope, usageFacts, usageFigures, usageOf, type NodeView, type SeriesPoint, type UsageTotals } from '../domain/usage.js';
import { Deadlines } from './deadlines.js';
import { applyUsage, Interner, sameOrNew, shapeOf, toNodeView, updateNodeViews } from './nodes.js';
import type { HealthPublisher, HealthStore, SampleBucket, StoredClusterHealth, StoredClusterNodes } from './ports.js';
import type { ClusterRegistry } from './registry.js';

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
  /** Milliseconds from a report being sent to the cluster's health being updated, over the last reports. */
  lag: { count: number; p50: number; p90: number; p99: number; max: number };
}

/** The state of one cluster that reported. */
interface ClusterRecord {
  id: string;
  tenantId: string;
  projectId: string;
  state: HealthState;
  health: Health;
  changedAt: number;
  nodes: NodeView[];
  nodesObservedAt: number | null;
  services: ReportedService[];
  workers: UsageTotals;
  all: UsageTotals;
  agentStartedAt: string | null;
  seq: number;
  bucket: SampleBucket | null;
  shape: number;
  version: number | null;
  savedAt: number;
  nodesVersion: number | null;
  nodesSavedAt: number;
}

/** A cluster's health, nodes, services and usage as the API shows them. */
export interface ClusterView {
  health: Health;
  lastHeartbeatAt: number | null;
  changedAt: number | null;
  nodes: readonly NodeView[];
  /** When the nodes were last observed. */
  nodesObservedAt: number | null;
  services: readonly ReportedService[];
  workers: UsageTotals;
  all: UsageTotals;
}

const decoder = new TextDecoder();
const LAG_WINDOW = 8192;
/** Longest stretch a flush runs before letting reports in. */
const FLUSH_SLICE_MS = 5;
/** Nodes and services are written at least this many times less often than health. */
const NODES_PERSIST_FACTOR = 6;

/** A stable offset in [0, span) per cluster, so that clusters' sample buckets do not all close at once. */
function offsetOf(id: string, span: number): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % span;
}
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

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
  readonly #o: Required<Omit<IngestOptions, 'policy' | 'now'>>;
  readonly #policy: HealthPolicy;
  readonly #now: () => number;
  readonly #records = new Map<string, ClusterRecord>();
  readonly #deadlines: Deadlines;
  readonly #interner = new Interner();
  /** Clusters whose health document is to be written, and whose nodes document. */
  readonly #dirty = new Set<string>();
  readonly #dirtyNodes = new Set<string>();
  #pending: SampleBucket[] = [];
  #flushing: Promise<void> | null = null;
  readonly #lags = new Float64Array(LAG_WINDOW);
  #lagCount = 0;
  readonly #stats = {
    received: 0,
    outcomes: Object.fromEntries(Object.keys(ReportOutcome).map((k) => [k, 0])) as Record<ReportOutcome, number>,
    healthChanges: 0,
    samplesPublished: 0,
    writes: 0,
    writeErrors: 0,
  };
  #lastMalformedLog = 0;

  constructor(options: IngestOptions) {
    this.#o = { sampleBucketMs: 5 * 60_000, persistEveryMs: 5 * 60_000, maxSeriesPoints: 500, tickMs: 1000, ...options };
    this.#policy = options.policy ?? DEFAULT_POLICY;
    this.#now = options.now ?? Date.now;
    this.#deadlines = new Deadlines(this.#o.tickMs);
  }

  get policy(): HealthPolicy {
    return this.#policy;
  }

  /** Takes one raw message from `agent.v1.<clusterId>.report`. */
  accept(subject: string, data: Uint8Array): ReportOutcome {
    this.#stats.received++;
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(data));
    } catch (error) {
      return this.#malformed(subject, `body is not JSON: ${(error as Error).message}`);
    }
    const parsed = agentReportSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.#malformed(subject, `${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
    }
    return this.acceptReport(subject, parsed.data);
  }

  /** Takes one validated report received on `subject`. */
  acceptReport(subject: string, report: AgentReport): ReportOutcome {
    const outcome = this.#apply(subject, report);
    this.#stats.outcomes[outcome]++;
    return outcome;
  }

  #malformed(subject: string, error: string): ReportOutcome {
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
    if (agentReport.parse(subject)?.clusterId !== report.clusterId) return ReportOutcome.mismatched_subject;
    const cluster = this.#o.registry.get(report.clusterId);
    if (!cluster) return ReportOutcome.unknown_cluster;
    if (cluster.tenantId !== report.tenantId) return ReportOutcome.foreign_tenant;
    let record = this.#records.get(cluster.id);
    if (record && record.agentStartedAt === report.agentStartedAt && report.seq <= record.seq) return ReportOutcome.out_of_order;

    const now = this.#now();
    const first = record === undefined;
    record ??= this.#create(cluster.id, cluster.tenantId, cluster.projectId, now);
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
      this.#sample(record, now);
      this.#publishUsage(record, now);
    }
    const shape = report.nodes || report.services ? shapeOf(record.nodes, record.services) : record.shape;
    // A new cluster's first nodes wait for the periodic write (see #create), not written at once.
    if (first) record.shape = shape;
    if (shape !== record.shape || now - record.nodesSavedAt >= this.#o.persistEveryMs * NODES_PERSIST_FACTOR) {
      record.shape = shape;
      this.#dirtyNodes.add(record.id);
    }
    if (now - record.savedAt >= this.#o.persistEveryMs) this.#dirty.add(record.id);
    this.#lags[this.#lagCount++ % LAG_WINDOW] = Math.max(0, now - Date.parse(report.sentAt));
    return ReportOutcome.accepted;
  }

  /**
   * A cluster reporting for the first time. Its documents are first written after a delay
   * spread over the persist interval (by cluster id), so that a fleet coming online at once (or
   * an empty store) is written over minutes, not in one burst; until then it lives in memory,
   * as any unwritten change does.
   */
  #create(id: string, tenantId: string, projectId: string, now: number): ClusterRecord {
    const every = this.#o.persistEveryMs;
    const delay = offsetOf(`${id}#first`, every);
    const record: ClusterRecord = {
      id,
      tenantId,
      projectId,
      state: INITIAL_STATE,
      health: evaluate(INITIAL_STATE, 0, this.#policy),
      changedAt: 0,
      nodes: [],
      nodesObservedAt: null,
      services: [],
      workers: usageOf([], UsageScope.WORKERS),
      all: usageOf([], UsageScope.ALL),
      agentStartedAt: null,
      seq: -1,
      bucket: null,
      shape: 0,
      version: null,
      savedAt: now - every + delay,
      nodesVersion: null,
      nodesSavedAt: now - every * NODES_PERSIST_FACTOR + delay,
    };
    this.#records.set(id, record);
    return record;
  }

  /** Re-evaluates a cluster's health; publishes and schedules a write when it changed. */
  #evaluate(record: ClusterRecord, now: number): void {
    const health = evaluate(record.state, now, this.#policy);
    this.#deadlines.set(record.id, health.nextEvaluationAt);
    // Unchanged, the old object stays (nothing new for the old generation to collect).
    if (sameHealth(record.health, health)) return;
    record.health = health;
    record.changedAt = now;
    // Written at once, unless the cluster has never been written (see #create).
    if (record.version !== null) this.#dirty.add(record.id);
    this.#stats.healthChanges++;
    try {
      this.#o.publisher.health(this.#healthMessage(record));
    } catch (error) {
      this.#o.log.error({ err: error, clusterId: record.id }, 'could not publish a health change');
    }
  }

  #healthMessage(record: ClusterRecord): ClusterHealthMessage {
    return {
      tenantId: record.tenantId,
      clusterId: record.id,
      status: record.health.status,
      lastHeartbeatAt: iso(record.state.lastHeartbeatAt),
      reasons: record.health.reasons.map((r) => ({ factor: r.factor, message: r.message, since: iso(r.since), stale: r.stale })),
      stale: record.health.stale,
      changedAt: new Date(record.changedAt).toISOString(),
    };
  }

  #sample(record: ClusterRecord, now: number): void {
    // Buckets are staggered per cluster: 100,000 of them closing on the same minute would be one burst of writes.
    const span = this.#o.sampleBucketMs;
    const offset = offsetOf(record.id, span);
    const start = Math.floor((now - offset) / span) * span + offset;
    if (record.bucket && record.bucket.start !== start) {
      this.#pending.push(record.bucket);
      record.bucket = null;
    }
    record.bucket ??= { clusterId: record.id, start, end: start + this.#o.sampleBucketMs, samples: [] };
    record.bucket.samples.push(now, record.workers.coresUsed, record.workers.memoryUsedBytes, record.all.coresUsed, record.all.memoryUsedBytes);
  }

  #publishUsage(record: ClusterRecord, now: number): void {
    const time = new Date(now).toISOString();
    for (const scope of [UsageScope.WORKERS, UsageScope.ALL]) {
      const totals = scope === UsageScope.WORKERS ? record.workers : record.all;
      try {
        this.#o.publisher.usage(usageMessage(record.tenantId, record.id, scope, totals, time, false, [{ time, cpuCores: totals.coresUsed, memoryBytes: totals.memoryUsedBytes }]));
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
    if (!record) return null;
    return {
      health: record.health,
      lastHeartbeatAt: record.state.lastHeartbeatAt,
      changedAt: record.changedAt || null,
      nodes: record.nodes,
      nodesObservedAt: record.nodesObservedAt,
      services: record.services,
      workers: record.workers,
      all: record.all,
    };
  }

  /** The usage series of a scope over the last `windowMs`: stored buckets, buckets not yet written and the open one. */
  async series(clusterId: string, scope: UsageScope, windowMs: number): Promise<SeriesPoint[]> {
    const now = this.#now();
    const from = now - windowMs;
    const stored = await this.#o.store.buckets(clusterId, from, now);
    const inMemory = this.#pending.filter((b) => b.clusterId === clusterId && b.end > from).map((b) => b.samples);
    const open = this.#records.get(clusterId)?.bucket?.samples;
    return seriesOf([...stored, ...inMemory, ...(open ? [open] : [])], scope, from, now, this.#o.maxSeriesPoints);
  }

  /** Counts by status of the given clusters (those that never reported are UNKNOWN). */
  statusCounts(clusterIds: Iterable<string>): Record<Health['status'], number> {
    const counts = { HEALTHY: 0, PROGRESSING: 0, UNHEALTHY: 0, UNKNOWN: 0 };
    for (const id of clusterIds) counts[this.#records.get(id)?.health.status ?? 'UNKNOWN']++;
    return counts;
  }

  /** Forgets a deleted cluster, here and in the store. */
  async forget(clusterId: string): Promise<void> {
    this.#records.delete(clusterId);
    this.#deadlines.delete(clusterId);
    this.#dirty.delete(clusterId);
    this.#dirtyNodes.delete(clusterId);
    this.#pending = this.#pending.filter((b) => b.clusterId !== clusterId);
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
    for await (const { health: doc, version, nodes: stored } of this.#o.store.loadAll()) {
      const nodes = (stored?.doc.nodes ?? []).map((n) => toNodeView(n, this.#interner));
      const services = stored?.doc.services ?? [];
      const record: ClusterRecord = {
        id: doc.id,
        tenantId: doc.tenantId,
        projectId: doc.projectId,
        state: doc.state,
        health: { status: doc.status, reasons: doc.reasons, stale: doc.stale, nextEvaluationAt: null },
        changedAt: doc.changedAt,
        nodes,
        nodesObservedAt: stored?.doc.nodesObservedAt ?? null,
        services,
        workers: usageOf(nodes, UsageScope.WORKERS),
        all: usageOf(nodes, UsageScope.ALL),
        agentStartedAt: doc.agentStartedAt,
        seq: doc.seq,
        bucket: null,
        shape: shapeOf(nodes, services),
        version,
        savedAt: doc.savedAt,
        nodesVersion: stored?.version ?? null,
        nodesSavedAt: stored?.doc.savedAt ?? 0,
      };
      this.#records.set(record.id, record);
      this.#evaluate(record, now);
      count++;
    }
    return count;
  }

  /** Writes what changed: closed sample buckets, then changed clusters. One flush at a time. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => (this.#flushing = null));
    return this.#flushing;
  }

  async #flush(): Promise<void> {
    // The store's adapters may do their work synchronously (SQLite): without yielding, a flush
    // of thousands of documents would hold the event loop, and with it the reports, for seconds.
    let slice = performance.now();
    const yieldNow = async () => {
      if (performance.now() - slice < FLUSH_SLICE_MS) return;
      await new Promise((resolve) => setImmediate(resolve));
      slice = performance.now();
    };
    const buckets = this.#pending;
    this.#pending = [];
    for (const bucket of buckets) {
      try {
        await this.#o.store.saveBucket(bucket);
        this.#stats.writes++;
      } catch (error) {
        this.#stats.writeErrors++;
        this.#o.log.error({ err: error, clusterId: bucket.clusterId }, 'could not write usage samples');
      }
      await yieldNow();
    }
    const ids = [...this.#dirty];
    this.#dirty.clear();
    for (const id of ids) {
      const record = this.#records.get(id);
      if (!record) continue;
      const now = this.#now();
      try {
        record.version = await this.#o.store.save(this.#stored(record, now), record.version);
        record.savedAt = now;
        this.#stats.writes++;
      } catch (error) {
        this.#stats.writeErrors++;
        this.#dirty.add(id);
        this.#o.log.error({ err: error, clusterId: id }, 'could not write cluster health');
      }
      await yieldNow();
    }
    const nodeIds = [...this.#dirtyNodes];
    this.#dirtyNodes.clear();
    for (const id of nodeIds) {
      const record = this.#records.get(id);
      if (!record) continue;
      const now = this.#now();
      try {
        record.nodesVersion = await this.#o.store.saveNodes(this.#storedNodes(record, now), record.nodesVersion);
        record.nodesSavedAt = now;
        this.#stats.writes++;
      } catch (error) {
        this.#stats.writeErrors++;
        this.#dirtyNodes.add(id);
        this.#o.log.error({ err: error, clusterId: id }, 'could not write cluster nodes');
      }
      await yieldNow();
    }
  }

  #storedNodes(record: ClusterRecord, now: number): StoredClusterNodes {
    return { id: record.id, nodes: record.nodes, nodesObservedAt: record.nodesObservedAt, services: record.services, savedAt: now };
  }

  #stored(record: ClusterRecord, now: number): StoredClusterHealth {
    return {
      id: record.id,
      tenantId: record.tenantId,
      projectId: record.projectId,
      state: record.state,
      status: record.health.status,
      reasons: record.health.reasons,
      stale: record.health.stale,
      changedAt: record.changedAt,
      agentStartedAt: record.agentStartedAt,
      seq: record.seq,
      savedAt: now,
    };
  }

  /** Drops samples older than the retention. */
  dropSamplesBefore(time: number): Promise<number> {
    return this.#o.store.dropSamplesBefore(time);
  }

  /** Writes everything not yet written, open sample buckets included (at shutdown). */
  async drain(): Promise<void> {
    await this.#flushing;
    for (const record of this.#records.values()) {
      if (record.bucket) {
        this.#pending.push(record.bucket);
        record.bucket = null;
      }
      if ((record.state.lastHeartbeatAt ?? 0) > record.savedAt || record.changedAt > record.savedAt) this.#dirty.add(record.id);
      if ((record.nodesObservedAt ?? 0) > record.nodesSavedAt) this.#dirtyNodes.add(record.id);
    }
    await this.flush();
  }

  stats(): IngestStats {
    const n = Math.min(this.#lagCount, LAG_WINDOW);
    const lags = Array.from(this.#lags.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number) => (n === 0 ? 0 : lags[Math.min(n - 1, Math.floor(q * n))]!);
    return {
      ...this.#stats,
      outcomes: { ...this.#stats.outcomes },
      clusters: this.#records.size,
      pendingWrites: this.#dirty.size + this.#dirtyNodes.size + this.#pending.length,
      deadlines: this.#deadlines.size,
      lag: { count: this.#lagCount, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: n === 0 ? 0 : lags[n - 1]! },
    };
  }
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
