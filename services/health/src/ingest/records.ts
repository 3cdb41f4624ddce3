import type { ClusterHealthMessage, FleetHealthMessage, ReportedService } from '@fleetgraph/schema';
import { evaluate, INITIAL_STATE, type Health, type HealthPolicy, type HealthState } from '../domain/health.js';
import { UsageScope, usageFigures, usageOf, type NodeView, type UsageTotals } from '../domain/usage.js';
import { shapeOf, toNodeView, type Interner } from './nodes.js';
import type { SampleBucket, StoredClusterHealth, StoredClusterNodes } from './ports.js';

/**
 * The record the ingest keeps of each cluster that reported, and how it maps to what is stored
 * (`StoredClusterHealth`, `StoredClusterNodes`), published (`ClusterHealthMessage`) and shown
 * (`ClusterView`).
 */

/** The state of one cluster that reported. */
export interface ClusterRecord {
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
  /** The open bucket of usage samples (samples.ts). */
  bucket: SampleBucket | null;
  /** What the nodes and services look like but for their numbers (`shapeOf`): a change is written at once. */
  shape: number;
  /** Store versions and when each document was last written (write-behind.ts). */
  version: number | null;
  savedAt: number;
  nodesVersion: number | null;
  nodesSavedAt: number;
  /** When its fleet health was last sent (ms; 0: never). */
  fleetSentAt: number;
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

/** Nodes and services are written at least this many times less often than health. */
export const NODES_PERSIST_FACTOR = 6;

/** A stable offset in [0, span) per cluster id, so that per-cluster timers (buckets, first writes) do not all fall at once. */
export function offsetOf(id: string, span: number): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % span;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * The record of a cluster reporting for the first time. Its documents are first written after a
 * delay spread over the persist interval (by cluster id), so that a fleet coming online at once
 * (or an empty store) is written over minutes, not in one burst; until then it lives in memory,
 * as any unwritten change does.
 */
export function newRecord(
  cluster: { id: string; tenantId: string; projectId: string },
  now: number,
  persistEveryMs: number,
  policy: HealthPolicy,
): ClusterRecord {
  const delay = offsetOf(`${cluster.id}#first`, persistEveryMs);
  return {
    id: cluster.id,
    tenantId: cluster.tenantId,
    projectId: cluster.projectId,
    state: INITIAL_STATE,
    health: evaluate(INITIAL_STATE, 0, policy),
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
    savedAt: now - persistEveryMs + delay,
    nodesVersion: null,
    nodesSavedAt: now - persistEveryMs * NODES_PERSIST_FACTOR + delay,
    fleetSentAt: 0,
  };
}

/** The record of a stored cluster, as `HealthStore.loadAll` gives it. */
export function restoredRecord(
  doc: StoredClusterHealth,
  version: number,
  stored: { doc: StoredClusterNodes; version: number } | null,
  interner: Interner,
): ClusterRecord {
  const nodes = (stored?.doc.nodes ?? []).map((n) => toNodeView(n, interner));
  const services = stored?.doc.services ?? [];
  return {
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
    fleetSentAt: 0,
  };
}

/** A cluster's health as published after a change (the `clusterHealth` subscription). */
export function healthMessage(record: ClusterRecord): ClusterHealthMessage {
  return {
    tenantId: record.tenantId,
    clusterId: record.id,
    status: record.health.status,
    lastHeartbeatAt: iso(record.state.lastHeartbeatAt),
    reasons: record.health.reasons.map((r) => ({
      factor: r.factor,
      message: r.message,
      since: iso(r.since),
      stale: r.stale,
    })),
    stale: record.health.stale,
    changedAt: new Date(record.changedAt).toISOString(),
  };
}

/** A cluster's fleet health (`health.v1.fleet`): its status and its workers' usage. */
export function fleetHealthMessage(record: ClusterRecord): FleetHealthMessage {
  const { cpuUsage, memoryUsage, nodes } = usageFigures(record.workers);
  const observed = record.nodesObservedAt !== null;
  return {
    tenantId: record.tenantId,
    projectId: record.projectId,
    clusterId: record.id,
    status: record.health.status,
    stale: record.health.stale,
    cpuUsage: observed ? cpuUsage : null,
    memoryUsage: observed ? memoryUsage : null,
    nodes,
    observedAt: iso(record.nodesObservedAt),
    changedAt: new Date(record.changedAt).toISOString(),
  };
}

/** A cluster's health document, as written at `now`. */
export function storedHealth(record: ClusterRecord, now: number): StoredClusterHealth {
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

/** A cluster's nodes document, as written at `now`. */
export function storedNodes(record: ClusterRecord, now: number): StoredClusterNodes {
  return {
    id: record.id,
    nodes: record.nodes,
    nodesObservedAt: record.nodesObservedAt,
    services: record.services,
    savedAt: now,
  };
}

/** A cluster's view for the API. */
export function viewOf(record: ClusterRecord): ClusterView {
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
