import type {
  ClusterHealthMessage,
  ClusterUsageMessage,
  FleetHealthMessage,
  ReportedService,
} from '@fleetgraph/schema';
import type { HealthReason, HealthState, HealthStatus } from '../domain/health.js';
import type { NodeView } from '../domain/usage.js';

/**
 * A cluster's health as stored: enough to go on evaluating it after a restart. Small, and
 * written whenever it changes and every few minutes (the heartbeat).
 */
export interface StoredClusterHealth {
  id: string;
  tenantId: string;
  projectId: string;
  state: HealthState;
  status: HealthStatus;
  reasons: HealthReason[];
  stale: boolean;
  /** When the status or its reasons last changed (ms). */
  changedAt: number;
  /** The last report taken: the agent run and its sequence number. */
  agentStartedAt: string | null;
  seq: number;
  /** When this was written (ms). */
  savedAt: number;
}

/**
 * A cluster's nodes and services as stored: larger, and written when they change (a node, a
 * condition, a service) and otherwise rarely, since the next report refreshes them anyway.
 */
export interface StoredClusterNodes {
  id: string;
  nodes: NodeView[];
  /** When the nodes were last observed (ms); null before. */
  nodesObservedAt: number | null;
  services: ReportedService[];
  savedAt: number;
}

/** A bucket of usage samples of one cluster: `SAMPLE_WIDTH` numbers per sample, in time order. */
export interface SampleBucket {
  clusterId: string;
  /** Start (inclusive) and end (exclusive) of the bucket's time span (ms). */
  start: number;
  end: number;
  samples: number[];
}

/** A document and the store version it was last read or written at (null: never written). */
export interface Versioned<T> {
  doc: T;
  version: number | null;
}

/** Where the health service keeps its state (adapters/health.repo.ts over the kit store). */
export interface HealthStore {
  /** Every stored cluster, with its nodes when stored, and their store versions. */
  loadAll(): AsyncIterable<{
    health: StoredClusterHealth;
    version: number;
    nodes: { doc: StoredClusterNodes; version: number } | null;
  }>;
  /** Writes a cluster's health; `version` is the one last read or written, null for a new one. Returns the new version. */
  save(doc: StoredClusterHealth, version: number | null): Promise<number>;
  /** Writes a cluster's nodes and services, as `save`. */
  saveNodes(doc: StoredClusterNodes, version: number | null): Promise<number>;
  /**
   * Writes clusters' health at once (one transaction), all or none: a write of another
   * version, or a store that cannot, fails them all (`save` each then). Returns the new versions.
   */
  saveAll(docs: readonly Versioned<StoredClusterHealth>[]): Promise<number[]>;
  /** Writes clusters' nodes and services at once, as `saveAll`. */
  saveNodesAll(docs: readonly Versioned<StoredClusterNodes>[]): Promise<number[]>;
  /** Forgets a cluster: its health and samples. */
  remove(clusterId: string): Promise<void>;
  /** Writes a bucket of samples, merging with a stored bucket of the same span. */
  saveBucket(bucket: SampleBucket): Promise<void>;
  /** Writes new buckets at once, all or none: one of a span already stored fails them all (`saveBucket` each then). */
  saveBuckets(buckets: readonly SampleBucket[]): Promise<void>;
  /** The sample arrays of a cluster's buckets that overlap [from, to]. */
  buckets(clusterId: string, from: number, to: number): Promise<number[][]>;
  /** Retention: drops buckets that ended before `time`; returns how many. */
  dropSamplesBefore(time: number): Promise<number>;
}

/** Where changes go for watchers (adapters/health.events.ts over NATS). */
export interface HealthPublisher {
  /** A cluster's health changed. */
  health(message: ClusterHealthMessage): void;
  /** A usage sample of a cluster, one message per scope. */
  usage(message: ClusterUsageMessage): void;
  /** A cluster's health and usage as the fleet overview shows them. */
  fleet(message: FleetHealthMessage): void;
  /** A deleted cluster's fleet health is no longer part of the fleet. */
  forget(cluster: { tenantId: string; projectId: string; clusterId: string }): void;
}
