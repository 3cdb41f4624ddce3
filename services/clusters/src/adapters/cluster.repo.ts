import {
  claimLease,
  DuplicateKeyError,
  traceCarrier,
  VersionConflictError,
  write,
  type Collection,
  type Identity,
  type Lease,
  type Outbox,
  type Page,
  type Published,
  type Store,
  type StoredDoc,
  type Write,
} from '@fleetgraph/kit';
import {
  clusterConditions,
  clusterEvent,
  clusterLifecycle,
  fleetCluster,
  type ClusterEventMessage,
} from '@fleetgraph/schema';
import pRetry from 'p-retry';
import type { ClusterSpec } from '../domain/cluster.js';
import { StaleWriteError } from '../domain/errors.js';
import { fleetEntry } from '../domain/fleet.js';
import { initialStatus, statusLease, type ClusterStatus, type VersionedStatus } from '../domain/status.js';
import type { Announcement, ClusterStatusStore } from '../orchestrator/ports.js';

export type { ClusterStatus };
export { StaleWriteError };

type SpecDoc = Omit<ClusterSpec, 'id'> & StoredDoc & { nameKey: string };
type StatusDoc = ClusterStatus & StoredDoc;
type EventDoc = ClusterEventMessage & StoredDoc & { seq: number };

export interface StoredCluster {
  spec: ClusterSpec;
  specVersion: number;
}

/** How many events are kept per cluster. */
export const EVENTS_RETAINED = 1000;

/** p-retry options of a compare-and-set: up to `attempts` in all, at once, on version conflicts only. */
const onConflict = (attempts: number) => ({
  retries: attempts - 1,
  minTimeout: 0,
  maxTimeout: 0,
  shouldRetry: ({ error }: { error: Error }) => error instanceof VersionConflictError,
});

const toSpec = ({ version: _v, nameKey: _k, ...doc }: SpecDoc): ClusterSpec => doc as ClusterSpec;

/**
 * Clusters in the store: specs (written by users through mutations), statuses (written by the
 * orchestrator) and events. Specs and statuses are separate documents so that the orchestrator
 * never races a user's change. Reads are scoped by the caller's identity.
 */
export class ClusterRepository implements ClusterStatusStore {
  private constructor(
    private readonly store: Store,
    private readonly outbox: Outbox,
    private readonly specs: Collection<SpecDoc>,
    private readonly statuses: Collection<StatusDoc>,
    private readonly events: Collection<EventDoc>,
  ) {
    // Events reach `Cluster.events` once they are in the stream, under their stream sequence.
    outbox.onPublished(clusterEvent, (published) => this.appendEvents(published));
  }

  /**
   * Opens the collections. The outbox (of the same store, carrying clusterEvent and
   * clusterConditions at least) announces what the repository's writes change.
   */
  static async open(store: Store, outbox: Outbox): Promise<ClusterRepository> {
    const specs = await store.collection<SpecDoc>({
      name: 'clusters',
      indexes: [
        { fields: ['tenantId', 'projectId', 'nameKey'], unique: true },
        { fields: ['tenantId', 'projectId', 'createdAt'] },
        { fields: ['tenantId', 'createdAt'] },
      ],
    });
    const statuses = await store.collection<StatusDoc>({
      name: 'cluster_status',
      // Serves `due`: the clusters nobody holds in due order, without reading held ones.
      indexes: [{ fields: ['leaseUntil', 'nextReconcileAt'] }],
    });
    const events = await store.collection<EventDoc>({
      name: 'cluster_events',
      indexes: [{ fields: ['clusterId', 'seq'] }],
    });
    return new ClusterRepository(store, outbox, specs, statuses, events);
  }

  /**
   * Stores a new cluster, its initial status and the announcement of that state (watchers of
   * clusterConditions get the current state first), together.
   * @returns null when the name is taken in the project.
   */
  async create(spec: ClusterSpec, now: Date, secrets: readonly Write[] = []): Promise<ClusterSpec | null> {
    // Its steps continue the trace of the request that created it (the orchestrator's spans).
    const status = { ...initialStatus(spec, now), trace: traceCarrier() ?? null };
    try {
      await this.store.commit([
        ...secrets,
        write.insert(this.specs, { ...spec, nameKey: spec.name }),
        write.insert(this.statuses, status),
        this.outbox.add(
          clusterConditions,
          { tenantId: spec.tenantId, clusterId: spec.id, phase: 'PENDING', conditions: [] },
          { key: spec.id },
        ),
        this.outbox.add(fleetCluster, fleetEntry(spec, status, now), { key: spec.id }),
      ]);
    } catch (error) {
      if (error instanceof DuplicateKeyError) return null;
      throw error;
    }
    this.outbox.kick();
    return spec;
  }

  async getSpec(id: string): Promise<StoredCluster | null> {
    const doc = await this.specs.get(id);
    return doc && { spec: toSpec(doc), specVersion: doc.version };
  }

  /** A cluster the caller may read, or null (unknown and foreign look alike). */
  async get(identity: Identity, id: string): Promise<ClusterSpec | null> {
    const doc = await this.specs.get(id);
    return doc && identity.canSee(doc) ? toSpec(doc) : null;
  }

  async list(
    identity: Identity,
    options: { projectId?: string | null; first: number; after?: string | null },
  ): Promise<Page<ClusterSpec>> {
    const scope = identity.readScope(options.projectId);
    if (!scope) return { nodes: [], cursors: [], hasNextPage: false, endCursor: null };
    const page = await this.specs.find({
      where: scope,
      orderBy: [{ field: 'createdAt', direction: 'desc' }],
      first: options.first,
      after: options.after,
    });
    return { ...page, nodes: page.nodes.map(toSpec) };
  }

  /**
   * Changes a spec with compare-and-set, re-reading and re-applying `change` on a conflict (a
   * change is a function of the current spec, so no update is lost). With `expectedGeneration`,
   * a spec that moved on since the caller read it is a StaleWriteError instead.
   * `change` returns the new spec, or a string: a reason to refuse the change.
   */
  async updateSpec(
    id: string,
    change: (spec: ClusterSpec) => ClusterSpec | string,
    options: { expectedGeneration?: number | null; now: Date },
  ): Promise<ClusterSpec | string> {
    const attempt = async (): Promise<ClusterSpec | string> => {
      const doc = await this.specs.get(id);
      if (!doc) return 'the cluster does not exist';
      const current = toSpec(doc);
      if (options.expectedGeneration != null && options.expectedGeneration !== current.generation) {
        throw new StaleWriteError(
          `the cluster is at generation ${current.generation}, not ${options.expectedGeneration}: read it again`,
        );
      }
      const next = change(current);
      if (typeof next === 'string') return next;
      const generation = current.generation + 1;
      const nameKey = next.deletionRequested ? `${next.name}~${next.id}` : next.name;
      await this.specs.replace({ ...next, generation, nameKey, version: doc.version });
      await this.wake(id, options.now);
      return { ...next, generation };
    };
    try {
      return await pRetry(attempt, onConflict(20));
    } catch (error) {
      if (error instanceof VersionConflictError)
        throw new StaleWriteError('the cluster is being changed by others right now: try again');
      throw error;
    }
  }

  /** Makes the cluster due now, so the orchestrator picks up a change at once. */
  async wake(id: string, now: Date): Promise<void> {
    await pRetry(async () => {
      const status = await this.statuses.get(id);
      if (status)
        await this.statuses.replace({
          ...status,
          nextReconcileAt: now.toISOString(),
          failures: 0,
          // The steps that follow continue the trace of the change.
          trace: traceCarrier() ?? status.trace ?? null,
        });
    }, onConflict(10)).catch((error: unknown) => {
      // Woken by everyone else meanwhile: it is due anyway.
      if (!(error instanceof VersionConflictError)) throw error;
    });
  }

  async getStatus(id: string): Promise<VersionedStatus | null> {
    return this.statuses.get(id);
  }

  /**
   * Statuses due for reconciliation that nobody holds, most overdue first. Clusters under a
   * lease are left out by the query (an index on the lease), so that a replica busy with many
   * clusters does not read those again on every look; `expiredLeases` finds the ones whose
   * holder died.
   */
  async due(now: Date, limit: number): Promise<VersionedStatus[]> {
    const where = { leaseUntil: null, nextReconcileAt: { lte: now.toISOString() } };
    return (await this.statuses.find({ where, orderBy: [{ field: 'nextReconcileAt' }], first: limit })).nodes;
  }

  /** How many statuses are due and held by nobody (the index of `due` serves it). */
  async backlog(now: Date): Promise<number> {
    return this.statuses.count({ leaseUntil: null, nextReconcileAt: { lte: now.toISOString() } });
  }

  /** Due statuses whose lease ran out (its replica died or stalled), in lease order. */
  async expiredLeases(now: Date, limit: number): Promise<VersionedStatus[]> {
    const at = now.toISOString();
    const where = { leaseUntil: { lte: at }, nextReconcileAt: { lte: at } };
    return (
      await this.statuses.find({
        where,
        orderBy: [{ field: 'leaseUntil' }, { field: 'nextReconcileAt' }],
        first: limit,
      })
    ).nodes;
  }

  /**
   * Claims a cluster for `owner` until `until`, if nobody else holds an unexpired lease.
   * @returns the status at its new version, or null when another replica holds it.
   */
  async claim(status: VersionedStatus, owner: string, now: Date, leaseMs: number): Promise<VersionedStatus | null> {
    return claimLease(this.statuses, statusLease, status, { owner, leaseMs, now: () => now.getTime() });
  }

  /**
   * Extends the lease `owner` holds on a cluster to `lease.until` (a step that runs long: an
   * Azure VM is made in minutes). Nothing when the lease is another's, or already longer.
   */
  async renewLease(id: string, lease: Lease): Promise<void> {
    await pRetry(async () => {
      const stored = await this.statuses.get(id);
      const held = stored && statusLease.read(stored);
      if (!stored || held?.owner !== lease.owner || (held.until ?? 0) >= lease.until) return;
      await this.statuses.replace(statusLease.write(stored, lease));
    }, onConflict(10)).catch((error: unknown) => {
      // Written by the step itself each time: the next renewal comes a third of the lease later.
      if (!(error instanceof VersionConflictError)) throw error;
    });
  }

  /**
   * Writes the orchestrator's status, and with it (all or nothing) the outbox entries that
   * announce the change. Only the lease holder writes. A conflict means the lease was lost, or
   * renewed, or a user woke the cluster: told from `base` (the status as the step last read or
   * wrote it), a wake's due time (now, when it was made) and reset backoff are kept, the later
   * lease kept, and
   * the write retried on top of the stored doc. The status saved is returned, a wake's due time
   * in it.
   */
  async saveStatus(
    status: VersionedStatus,
    owner: string,
    announcements: readonly Announcement[] = [],
    base?: VersionedStatus,
  ): Promise<VersionedStatus> {
    const writes = announcements.map((a) => this.announce(a));
    let candidate = status;
    let before = base;
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        if (writes.length === 0) return await this.statuses.replace(candidate);
        await this.store.commit([write.replace(this.statuses, candidate), ...writes]);
        this.outbox.kick();
        return { ...candidate, version: candidate.version + 1 };
      } catch (error) {
        if (!(error instanceof VersionConflictError)) throw error;
        const stored = await this.statuses.get(status.id);
        if (!stored) throw error;
        if (stored.leaseOwner !== owner)
          throw new StaleWriteError(`lost the lease of ${status.id} to ${stored.leaseOwner}`);
        // Only a wake changes the due time or the backoff of a cluster under a lease; without a
        // base, a stored due time earlier than the one written is taken for one.
        const woke =
          stored.nextReconcileAt !== null &&
          (before
            ? stored.nextReconcileAt !== before.nextReconcileAt || stored.failures !== before.failures
            : candidate.nextReconcileAt === null || stored.nextReconcileAt < candidate.nextReconcileAt);
        // A renewal (renewLease) made the lease longer: a step that still holds it keeps that.
        const holding = candidate.leaseOwner === owner;
        candidate = {
          ...candidate,
          version: stored.version,
          ...(woke ? { nextReconcileAt: stored.nextReconcileAt, failures: 0, trace: stored.trace ?? null } : {}),
          ...(holding && (stored.leaseUntil ?? '') > (candidate.leaseUntil ?? '')
            ? { leaseUntil: stored.leaseUntil }
            : {}),
        };
        before = stored;
      }
    }
    throw new StaleWriteError(`could not save the status of ${status.id}`);
  }

  /** Records an event of the cluster by itself (an audit: a kubeconfig was issued, say). */
  async record(event: ClusterEventMessage): Promise<void> {
    await this.store.commit([this.announce({ type: 'event', event })]);
    this.outbox.kick();
  }

  /** The outbox entry of an announcement, keyed by the cluster so that its events stay in order. */
  private announce(announcement: Announcement): Write {
    switch (announcement.type) {
      case 'event':
        return this.outbox.add(clusterEvent, announcement.event, { key: announcement.event.clusterId });
      case 'conditions':
        return this.outbox.add(clusterConditions, announcement.update, { key: announcement.update.clusterId });
      case 'lifecycle':
        return this.outbox.add(clusterLifecycle, announcement.cluster, { key: announcement.cluster.id });
      case 'fleet':
        return this.outbox.add(fleetCluster, announcement.cluster, { key: announcement.cluster.id });
    }
  }

  /**
   * Stores events that are in the stream under their stream sequence, which is their cursor,
   * and drops each cluster's beyond the retained count. A repeat (the same sequence) is
   * ignored, so this is safe to retry.
   */
  async appendEvents(published: readonly Published<ClusterEventMessage>[]): Promise<void> {
    const clusters = new Set<string>();
    const docs = published.map(({ payload, seq }) => {
      const { cursor: _c, ...event } = payload;
      clusters.add(event.clusterId);
      return { ...event, cursor: String(seq), seq, id: `${event.clusterId}:${seq}` };
    });
    // One commit for them all; a repeat among them (a relay that published again) fails the
    // commit, and then each is written alone, the repeats skipped.
    try {
      await this.store.commit(docs.map((doc) => write.insert(this.events, doc)));
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
      for (const doc of docs) {
        try {
          await this.events.insert(doc);
        } catch (error) {
          if (!(error instanceof DuplicateKeyError)) throw error;
        }
      }
    }
    for (const clusterId of clusters)
      await this.events.keepFirst({ clusterId }, [{ field: 'seq', direction: 'desc' }], EVENTS_RETAINED);
  }

  /** Events of a cluster in cursor order, after a cursor (a stream sequence). */
  async listEvents(
    clusterId: string,
    options: { first: number; after?: number | null },
  ): Promise<Page<ClusterEventMessage>> {
    const page = await this.events.find({
      where: options.after != null ? { clusterId, seq: { gt: options.after } } : { clusterId },
      orderBy: [{ field: 'seq' }],
      first: options.first,
    });
    return {
      nodes: page.nodes.map(({ version: _v, id: _id, seq: _seq, ...e }) => e as ClusterEventMessage),
      // An event's cursor is its own (its stream sequence), which `after` takes.
      cursors: page.nodes.map((e) => e.cursor!),
      hasNextPage: page.hasNextPage,
      endCursor: page.nodes.at(-1)?.cursor ?? (options.after != null ? String(options.after) : null),
    };
  }
}
