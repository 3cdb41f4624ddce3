import { randomUUID } from 'node:crypto';
import { BusError, createLeaseRunner, type Identity, type Lease, type LeaseRunner, type Logger } from '@fleetgraph/kit';
import type { ClusterSummary } from '@fleetgraph/schema';
import { ulid } from 'ulid';
import type { BlobStore } from '../domain/blob-store.js';
import {
  archiveFileName,
  archiveRoot,
  bundleLease,
  PENDING_STATUSES,
  selectedParts,
  validateParts,
  type LogBundle,
  type Problem,
} from '../domain/bundle.js';
import { CollectionError } from '../domain/collection-error.js';
import { CollectionQueue, type QueuedJob } from '../domain/collection-queue.js';
import { noteBundleFailed, noteBundleReady } from './metrics.js';
import type {
  AgentLogs,
  ArchiveSummary,
  ArchiveWriter,
  BundleStore,
  ClusterDirectory,
  CollectionSlots,
} from './ports.js';

/** How collections run; see the README for each setting and its default. */
export interface CollectionSettings {
  /** Collections running at once in the service (across its replicas, given `slots`), in total and per cluster. */
  maxConcurrent: number;
  maxConcurrentPerCluster: number;
  /** Requests waiting for a slot in the service; more are refused with TOO_MANY_REQUESTS. */
  maxQueued: number;
  /** How soon a collection that found no free slot in the service tries again. */
  slotRetryMs: number;
  /** The largest archive, in bytes; a larger one FAILS. */
  maxArchiveBytes: number;
  /** How long a bundle and its archive are kept. */
  retentionMs: number;
  /** The last lines of each log a bundle keeps (node logs: the contract's 10,000). */
  tailLines: number;
  /** Namespace logs: this far back from the start of the collection. */
  namespaceWindowMs: number;
  /** How long the agent has to accept a collection. */
  agentTimeoutMs: number;
  /** How long the agent may stay silent while streaming. */
  idleTimeoutMs: number;
  /** How long one collection may take in all. */
  deadlineMs: number;
  /** Flow control: messages in flight, and the largest piece of a file per message. */
  window: number;
  chunkBytes: number;
  /** How long a replica's hold on its bundles lasts without renewal; another replica fails them after it. */
  leaseMs: number;
  /** How often stale and expired bundles are swept. */
  sweepMs: number;
}

export const DEFAULT_COLLECTION_SETTINGS: CollectionSettings = {
  maxConcurrent: 4,
  maxConcurrentPerCluster: 1,
  maxQueued: 100,
  slotRetryMs: 500,
  maxArchiveBytes: 512 * 1024 * 1024,
  retentionMs: 72 * 3600_000,
  tailLines: 10_000,
  namespaceWindowMs: 3600_000,
  agentTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  deadlineMs: 15 * 60_000,
  window: 16,
  chunkBytes: 64 * 1024,
  leaseMs: 30_000,
  sweepMs: 60_000,
};

/** The outcome of `request`: the new bundle, a domain problem for `userErrors`, or a refusal. */
export type RequestOutcome =
  | { kind: 'requested'; bundle: LogBundle }
  | { kind: 'problems'; problems: Problem[] }
  | { kind: 'forbidden'; message: string }
  | { kind: 'unavailable'; message: string };

export interface RequestInput {
  clusterId: string;
  kubeSystem?: boolean | null;
  namespaceLogs?: boolean | null;
  nodeLogs?: boolean | null;
}

/** What collections work with: ports only (adapters/collection-sources.ts makes the NATS ones). */
export interface LogCollectionsDeps {
  bundles: BundleStore;
  blobs: BlobStore;
  /** The clusters service: is the cluster the caller's, and where is it. */
  clusters: ClusterDirectory;
  /** The clusters' agents, which stream the logs. */
  agents: AgentLogs;
  /** Writes the archive as the stream comes. */
  archives: ArchiveWriter;
  log: Logger;
  settings?: Partial<CollectionSettings>;
  /** Names this replica in leases. @default a random id */
  replicaId?: string;
  /**
   * The limits across replicas: the settings' limits hold for the whole service, not per
   * replica. @default none: each replica's own queue is the only limit (one replica)
   */
  slots?: CollectionSlots;
  /** Observes collections starting and ending, for tests and benchmarks. */
  onCollection?: (event: { type: 'started' | 'finished'; bundle: LogBundle; summary?: ArchiveSummary }) => void;
}

interface Job extends QueuedJob {
  cluster: ClusterSummary;
}

const pending = (bundle: LogBundle) => PENDING_STATUSES.includes(bundle.status);

/** Bundles whose replica died, failed per sweep at most. */
const TAKEOVERS_PER_SWEEP = 100;

const notFound = (): Problem => ({ code: 'NOT_FOUND', message: 'no such cluster', field: ['input', 'clusterId'] });

/**
 * Log bundle collections: takes requests, queues them under the concurrency limits, runs each
 * (the agent streams, the archive is written to the blob store as it comes), and records and
 * publishes every status change. A replica holds the bundles it queued or runs with a lease it
 * renews (kit's lease runner); when a replica dies, another one's sweep takes its bundles over
 * by failing them with a clear message, since a collection streams to the replica that asked.
 */
export class LogCollections {
  readonly settings: CollectionSettings;
  readonly replicaId: string;
  private readonly queue: CollectionQueue<Job>;
  private readonly running = new Map<string, AbortController>();
  private readonly finished = new Set<Promise<void>>();
  private readonly leases: LeaseRunner<LogBundle>;
  private stopping = false;

  constructor(private readonly deps: LogCollectionsDeps) {
    this.settings = { ...DEFAULT_COLLECTION_SETTINGS, ...deps.settings };
    this.replicaId = deps.replicaId ?? `logs-${randomUUID()}`;
    this.queue = new CollectionQueue({
      total: this.settings.maxConcurrent,
      perCluster: this.settings.maxConcurrentPerCluster,
      queued: this.settings.maxQueued,
    });
    this.leases = createLeaseRunner<LogBundle>({
      log: deps.log,
      name: 'log collection',
      idKey: 'bundleId',
      owner: this.replicaId,
      sweepMs: this.settings.sweepMs,
      concurrency: TAKEOVERS_PER_SWEEP,
      findWork: (now, limit) => deps.bundles.findStale(now.getTime(), limit),
      takeOver: (stale, now) => this.failInterrupted(stale.id, now),
      // Queued and running collections are held in memory, and their leases renewed from there.
      renew: {
        leaseMs: this.settings.leaseMs,
        ids: () => this.queue.ids(),
        renew: (id, lease) => this.renewLease(id, lease),
      },
      housekeeping: (now) => this.deleteExpired(now),
    });
  }

  /** Starts renewing leases and sweeping stale and expired bundles. */
  start(): void {
    this.leases.start();
  }

  /** Collections waiting and running in this replica. */
  get load(): { queued: number; running: number } {
    return { queued: this.queue.queuedCount, running: this.queue.runningCount };
  }

  /**
   * Requests a bundle of the caller's cluster: checked with the clusters service in the caller's
   * tenant (an unknown cluster and one the caller cannot see are both NOT_FOUND), allowed to
   * editors and admins of its project. Returns at once with the bundle REQUESTED.
   */
  async request(identity: Identity, input: RequestInput, now = new Date()): Promise<RequestOutcome> {
    const parts = selectedParts(input);
    const problems = validateParts(parts);
    let cluster: ClusterSummary | null = null;
    try {
      cluster = await this.deps.clusters.cluster({ tenantId: identity.tenantId, id: input.clusterId });
    } catch (error) {
      if (!(error instanceof BusError && (error.code === 'NOT_FOUND' || error.code === 'BAD_REQUEST'))) {
        this.deps.log.error({ err: error }, 'clusters.v1.get failed');
        return { kind: 'unavailable', message: 'the clusters service did not answer' };
      }
    }
    if (!cluster || !identity.canRead(cluster.projectId))
      return { kind: 'problems', problems: [notFound(), ...problems] };
    if (!identity.can('editor', cluster.projectId))
      return { kind: 'forbidden', message: "collecting logs needs the editor or admin role in the cluster's project" };
    if (cluster.phase === 'DELETED')
      problems.push({ code: 'CLUSTER_DELETED', message: 'the cluster is deleted', field: ['input', 'clusterId'] });
    if (problems.length > 0) return { kind: 'problems', problems };
    if (this.stopping) return { kind: 'unavailable', message: 'the logs service is stopping; try again' };
    if (this.queue.full || (this.deps.slots && (await this.deps.slots.queued()) >= this.settings.maxQueued)) {
      return {
        kind: 'problems',
        problems: [
          {
            code: 'TOO_MANY_REQUESTS',
            message: 'too many log bundles are waiting to be collected; try again later',
            field: ['input'],
          },
        ],
      };
    }

    const draft: LogBundle = {
      id: `lb_${ulid()}`,
      tenantId: identity.tenantId,
      projectId: cluster.projectId,
      clusterId: cluster.id,
      clusterName: cluster.name,
      status: 'REQUESTED',
      message: 'waiting for a free collection slot',
      parts,
      requestedBy: identity.userId,
      requestedAt: now.toISOString(),
      startedAt: null,
      readyAt: null,
      fileName: null,
      sizeBytes: null,
      expiresAt: new Date(now.getTime() + this.settings.retentionMs).toISOString(),
      owner: null,
      leaseUntil: null,
    };
    // Held by this replica from the start: it queues and runs the collection.
    const bundle = await this.deps.bundles.insert(
      bundleLease.write(draft, { owner: this.replicaId, until: now.getTime() + this.settings.leaseMs }),
    );
    this.queue.enqueue({ id: bundle.id, clusterId: cluster.id, cluster });
    this.pump();
    return { kind: 'requested', bundle };
  }

  /**
   * Starts every queued collection the limits allow: this replica's queue first, then, across
   * replicas, the service's slots. A collection that gets no slot goes back to the head of the
   * queue and is tried again shortly.
   */
  private pump(): void {
    if (this.stopping) return;
    for (const job of this.queue.take()) {
      const done = this.startJob(job).finally(() => {
        this.finished.delete(done);
      });
      this.finished.add(done);
    }
  }

  private async startJob(job: Job): Promise<void> {
    const { slots } = this.deps;
    let slotted = false;
    try {
      slotted = !slots || (await slots.acquire(job.id, job.clusterId));
    } catch (error) {
      this.deps.log.warn({ err: error, bundleId: job.id }, 'could not take a collection slot; trying again');
    }
    if (!slotted) {
      this.queue.putBack(job.id);
      this.retryLater();
      return;
    }
    try {
      await this.run(job);
    } finally {
      await slots
        ?.release(job.id)
        .catch((error: unknown) =>
          this.deps.log.warn({ err: error, bundleId: job.id }, 'could not free a collection slot'),
        );
      this.queue.finish(job.id);
      this.pump();
    }
  }

  private retryTimer: NodeJS.Timeout | undefined;
  /** Tries the queue again once slots may have come free elsewhere. */
  private retryLater(): void {
    if (this.retryTimer || this.stopping) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, this.settings.slotRetryMs);
    this.retryTimer.unref();
  }

  private async run(job: Job): Promise<void> {
    const controller = new AbortController();
    this.running.set(job.id, controller);
    const deadline = setTimeout(
      () =>
        controller.abort(
          new CollectionError(
            'DEADLINE',
            `the collection took longer than ${Math.round(this.settings.deadlineMs / 1000)} s`,
          ),
        ),
      this.settings.deadlineMs,
    );
    const startedAt = new Date();
    try {
      const bundle = await this.transition(job.id, (b) => ({
        ...b,
        status: 'COLLECTING',
        startedAt: startedAt.toISOString(),
        message: 'collecting from the cluster agent',
      }));
      if (!bundle) return;
      this.deps.onCollection?.({ type: 'started', bundle });
      // The archive and its bundle expire together, a retention period after the collection began.
      const expiresAt = new Date(startedAt.getTime() + this.settings.retentionMs);
      const summary = await this.collect(bundle, job.cluster, startedAt, expiresAt, controller.signal);
      const readyAt = new Date();
      const ready = await this.transition(job.id, (b) =>
        bundleLease.write(
          {
            ...b,
            status: 'READY',
            message: null,
            sizeBytes: summary.sizeBytes,
            readyAt: readyAt.toISOString(),
            expiresAt: expiresAt.toISOString(),
          },
          null,
        ),
      );
      this.deps.log.info(
        { bundleId: job.id, clusterId: job.clusterId, ...summary, ms: readyAt.getTime() - startedAt.getTime() },
        'log bundle ready',
      );
      noteBundleReady(startedAt, summary.sizeBytes);
      if (ready) this.deps.onCollection?.({ type: 'finished', bundle: ready, summary });
    } catch (error) {
      const message =
        error instanceof CollectionError
          ? error.message
          : `the collection failed unexpectedly (${(error as Error)?.message ?? String(error)})`;
      if (!(error instanceof CollectionError))
        this.deps.log.error({ err: error, bundleId: job.id }, 'log collection failed unexpectedly');
      else this.deps.log.warn({ bundleId: job.id, code: error.code, reason: message }, 'log collection failed');
      noteBundleFailed(startedAt, error instanceof CollectionError ? error.code : 'INTERNAL');
      await this.deps.blobs.delete(job.id).catch(() => {});
      const failed = await this.transition(job.id, (b) =>
        bundleLease.write({ ...b, status: 'FAILED', message, fileName: null, sizeBytes: null }, null),
      ).catch((e: unknown) => {
        this.deps.log.error({ err: e, bundleId: job.id }, 'could not record a failed collection');
        return null;
      });
      if (failed) this.deps.onCollection?.({ type: 'finished', bundle: failed });
    } finally {
      clearTimeout(deadline);
      this.running.delete(job.id);
    }
  }

  private async collect(
    bundle: LogBundle,
    cluster: ClusterSummary,
    startedAt: Date,
    expiresAt: Date,
    signal: AbortSignal,
  ): Promise<ArchiveSummary> {
    const { settings } = this;
    const namespaceSince = new Date(startedAt.getTime() - settings.namespaceWindowMs).toISOString();
    const stream = await this.deps.agents.open(
      {
        clusterId: bundle.clusterId,
        tenantId: bundle.tenantId,
        bundleId: bundle.id,
        parts: bundle.parts,
        nodeLogLines: settings.tailLines,
        namespaceSince,
      },
      {
        window: settings.window,
        chunkBytes: settings.chunkBytes,
        requestTimeoutMs: settings.agentTimeoutMs,
        idleTimeoutMs: settings.idleTimeoutMs,
        signal,
      },
    );
    const fileName = archiveFileName(bundle.clusterName, new Date(bundle.requestedAt));
    // The file name is known now: record it, so a FAILED bundle does not claim one.
    await this.transition(bundle.id, (b) => ({ ...b, fileName, message: `collecting from ${stream.nodes} nodes` }));
    try {
      return await this.deps.archives(stream, (archive) => this.deps.blobs.write(bundle.id, archive, { expiresAt }), {
        root: archiveRoot(fileName),
        parts: bundle.parts,
        maxBytes: settings.maxArchiveBytes,
        signal,
        header: {
          bundle: {
            id: bundle.id,
            fileName,
            requestedAt: bundle.requestedAt,
            parts: bundle.parts,
            tailLines: settings.tailLines,
            namespaceSince,
          },
          cluster: {
            id: cluster.id,
            name: cluster.name,
            projectId: cluster.projectId,
            cloud: cluster.cloud.type,
            region: cluster.cloud.region,
          },
        },
      });
    } catch (error) {
      stream.cancel(error instanceof Error ? error.message : 'failed');
      throw error;
    } finally {
      stream.close();
    }
  }

  /**
   * Changes a bundle this replica holds (the repository announces the change). A bundle that is gone, or no
   * longer this replica's (another replica's sweep failed it), is left alone: null.
   */
  private async transition(id: string, change: (bundle: LogBundle) => LogBundle): Promise<LogBundle | null> {
    return this.deps.bundles.update(id, (b) => (this.holds(b) ? change(b) : null));
  }

  /** Whether this replica holds the bundle, still to collect or collecting. */
  private holds(bundle: LogBundle): boolean {
    return bundleLease.read(bundle).owner === this.replicaId && pending(bundle);
  }

  /** Renews the lease of a bundle this replica queued or runs (no watcher sees it). */
  private async renewLease(id: string, lease: Lease): Promise<void> {
    await this.deps.bundles.update(id, (b) => (this.holds(b) ? bundleLease.write(b, lease) : null), { quiet: true });
    await this.deps.slots?.renew(id);
  }

  /**
   * Takes over a bundle whose replica stopped renewing it: a collection cannot go on elsewhere, so
   * it fails, and its partial archive goes.
   */
  private async failInterrupted(id: string, now: Date): Promise<void> {
    const message =
      'the collection was interrupted: the logs service replica running it stopped; request the logs again';
    const failed = await this.deps.bundles.update(id, (b) =>
      pending(b) && (bundleLease.read(b).until ?? 0) < now.getTime()
        ? bundleLease.write({ ...b, status: 'FAILED', message }, null)
        : null,
    );
    if (failed) await this.deps.blobs.delete(failed.id).catch(() => {});
  }

  private async deleteExpired(now: Date): Promise<void> {
    const bundles = await this.deps.bundles.deleteExpired(now);
    const blobs = await this.deps.blobs.deleteExpired(now);
    if (bundles + blobs > 0) this.deps.log.info({ bundles, blobs }, 'expired log bundles deleted');
  }

  /**
   * Fails the bundles whose replica stopped renewing them (takes them over), and deletes expired
   * bundles and archives.
   */
  sweep(now = new Date()): Promise<void> {
    return this.leases.sweep(now);
  }

  /** Stops: queued and running collections end FAILED (the agents are told to stop). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    await this.leases.stop();
    const stopped = new CollectionError(
      'STOPPED',
      'the logs service stopped before the collection finished; request the logs again',
    );
    for (const job of this.queue.drain()) {
      await this.transition(job.id, (b) =>
        bundleLease.write({ ...b, status: 'FAILED', message: stopped.message }, null),
      ).catch(() => null);
    }
    for (const controller of this.running.values()) controller.abort(stopped);
    await Promise.allSettled([...this.finished]);
  }
}
