import type { Readable } from 'node:stream';
import type { ClusterSummary, CollectLogsRequest, LogParts, LogStreamMessage } from '@fleetgraph/schema';
import type { LogBundle } from '../domain/bundle.js';
import type { ManifestHeader } from '../domain/manifest.js';

/**
 * What log collections (app/collections.ts) need, implemented by the adapters: the bundle store
 * (adapters/bundle.repo.ts), the clusters service and the clusters' agents over NATS
 * (adapters/collection-sources.ts, adapters/agent-stream.ts), the archive writer
 * (adapters/archive.ts) and the blob store (domain/blob-store.ts). The core knows no adapter.
 */

/** Where bundles are kept; every change of status is announced with it (the outbox). */
export interface BundleStore {
  /** Stores a new bundle and announces it. */
  insert(bundle: LogBundle): Promise<LogBundle>;
  get(id: string): Promise<LogBundle | null>;
  /**
   * Applies `change` to the stored bundle by compare-and-set, retrying on a conflict; `change`
   * returns null to leave it. Announced unless `quiet`. @returns the bundle as saved, or null
   */
  update(
    id: string,
    change: (bundle: LogBundle) => LogBundle | null,
    options?: { quiet?: boolean },
  ): Promise<LogBundle | null>;
  /** Bundles still to collect or collecting whose lease ran out before `nowMs`: their replica is gone. */
  findStale(nowMs: number, first?: number): Promise<LogBundle[]>;
  /** Deletes the bundles that expired before `now`; returns how many. */
  deleteExpired(now: Date): Promise<number>;
}

/**
 * The collection limits across every replica of the service (adapters/collection-slots.ts): a
 * slot for the service and one for the cluster, taken before a collection starts.
 */
export interface CollectionSlots {
  /** Takes the slots a collection of the cluster needs, if the limits allow it now. */
  acquire(bundleId: string, clusterId: string): Promise<boolean>;
  /** Frees a collection's slots. */
  release(bundleId: string): Promise<void>;
  /** Renews the slots of a collection this replica runs (with its bundle's lease). */
  renew(bundleId: string): Promise<void>;
  /** Bundles waiting for a slot, across the replicas. */
  queued(): Promise<number>;
}

/**
 * A cluster of a tenant (the clusters service). @throws BusError NOT_FOUND or BAD_REQUEST for one
 * the tenant does not have
 */
export interface ClusterDirectory {
  cluster(request: { tenantId: string; id: string }): Promise<ClusterSummary>;
}

/** What the archive is made of: every stream message but `error`, which ends the stream as a CollectionError. */
export type StreamItem = Exclude<LogStreamMessage, { type: 'error' }>;

export interface AgentStreamOptions {
  /** Messages the agent may send beyond the last one consumed. */
  window: number;
  /** Largest piece of a file per message. */
  chunkBytes: number;
  /** How long the agent has to accept the request. */
  requestTimeoutMs: number;
  /** How long the stream may stay silent while the archive waits for it. */
  idleTimeoutMs: number;
  /** Aborts the stream; its reason (a CollectionError) is what the consumer gets. */
  signal?: AbortSignal;
}

/** A collection's stream of messages, in order, as they may be consumed. */
export interface AgentStream extends AsyncIterable<StreamItem> {
  /** Nodes the agent reported when it accepted. */
  readonly nodes: number;
  /** Tells the agent to stop, and closes the stream. */
  cancel(reason: string): void;
  close(): void;
}

/** The clusters' agents, which stream their logs. */
export interface AgentLogs {
  /**
   * Asks the cluster's agent to collect. @throws CollectionError when the agent cannot be reached,
   * does not answer, or refuses
   */
  open(request: Omit<CollectLogsRequest, 'stream'>, options: AgentStreamOptions): Promise<AgentStream>;
}

export interface ArchiveOptions {
  /** The folder every entry lies in (the archive's name without `.zip`). */
  root: string;
  /** What Manifest.yaml says about the bundle and the cluster (`collectedAt` is filled in). */
  header: Omit<ManifestHeader, 'bundle'> & { bundle: Omit<ManifestHeader['bundle'], 'collectedAt'> };
  parts: LogParts;
  /** The archive may not grow past this many bytes. */
  maxBytes: number;
  /** Aborts the archive; its reason is the error thrown. */
  signal?: AbortSignal;
}

export interface ArchiveSummary {
  /** Bytes of the archive as stored. */
  sizeBytes: number;
  files: number;
  resources: number;
  /** Lines and bytes of every log file, uncompressed. */
  lines: number;
  uncompressedBytes: number;
}

/** Writes a stream's items into one archive, handed to `store` as it is written. @throws CollectionError */
export type ArchiveWriter = (
  items: AsyncIterable<StreamItem>,
  store: (archive: Readable) => Promise<{ size: number }>,
  options: ArchiveOptions,
) => Promise<ArchiveSummary>;
