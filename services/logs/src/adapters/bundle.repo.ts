import {
  VersionConflictError,
  write,
  type Collection,
  type Identity,
  type Outbox,
  type Store,
  type StoredDoc,
  type Write,
} from '@fleetgraph/kit';
import { logBundleChanged } from '@fleetgraph/schema';
import pRetry from 'p-retry';
import type { BundleStore } from '../app/ports.js';
import { PENDING_STATUSES, type LogBundle } from '../domain/bundle.js';
import { toMessage } from './bundle.events.js';

interface StoredBundle extends StoredDoc, LogBundle {}

/** Bundles a cluster's list returns at most, newest first (the retention period bounds them anyway). */
export const MAX_BUNDLES_PER_CLUSTER = 100;

/**
 * Log bundles in the store. Reads for callers are scoped by their identity: a bundle of another
 * tenant, or of a project the caller cannot read, is indistinguishable from a missing one. Every
 * change of status is written with its `logs.v1.bundles` event in the outbox.
 */
export class BundleRepository implements BundleStore {
  private constructor(
    private readonly store: Store,
    private readonly outbox: Outbox,
    private readonly bundles: Collection<StoredBundle>,
  ) {}

  /** Opens the collection; `outbox` (of the same store, carrying logBundleChanged) announces changes. */
  static async open(store: Store, outbox: Outbox): Promise<BundleRepository> {
    const bundles = await store.collection<StoredBundle>({
      name: 'log_bundles',
      indexes: [
        { fields: ['tenantId', 'clusterId', 'requestedAt'] },
        { fields: ['status', 'leaseUntil'] },
        { fields: ['expiresAt'] },
      ],
    });
    return new BundleRepository(store, outbox, bundles);
  }

  /** Stores a new bundle and announces it. */
  async insert(bundle: LogBundle): Promise<LogBundle> {
    await this.store.commit([write.insert(this.bundles, bundle), this.announce(bundle)]);
    this.outbox.kick();
    return bundle;
  }

  /** A bundle by id, whoever owns it: for the service's own work. */
  async get(id: string): Promise<LogBundle | null> {
    const doc = await this.bundles.get(id);
    return doc && fromStored(doc);
  }

  /** A bundle the caller may read, or null. */
  async getVisible(identity: Identity, id: string): Promise<LogBundle | null> {
    const bundle = await this.get(id);
    return bundle && identity.canSee(bundle) ? bundle : null;
  }

  /** A bundle of the tenant, or null: for download tokens, which name both. */
  async getInTenant(tenantId: string, id: string): Promise<LogBundle | null> {
    const bundle = await this.get(id);
    return bundle && bundle.tenantId === tenantId ? bundle : null;
  }

  /** Bundles waiting for a collection slot, across the replicas. */
  countQueued(): Promise<number> {
    return this.bundles.count({ status: 'REQUESTED' });
  }

  /** The cluster's bundles the caller may read, newest first. */
  async listForCluster(identity: Identity, clusterId: string): Promise<LogBundle[]> {
    const page = await this.bundles.find({
      where: { tenantId: identity.tenantId, clusterId },
      orderBy: [{ field: 'requestedAt', direction: 'desc' }],
      first: MAX_BUNDLES_PER_CLUSTER,
    });
    return page.nodes.map(fromStored).filter((b) => identity.canSee(b));
  }

  /**
   * Applies `change` to the stored bundle and saves it if nobody changed it meanwhile, retrying on
   * a conflict with what is stored then. `change` returns null to leave the bundle as it is. The
   * change is announced unless `quiet` (a lease renewal, which no watcher sees).
   * @returns the bundle as saved, or null when it is gone or `change` declined
   */
  async update(
    id: string,
    change: (bundle: LogBundle) => LogBundle | null,
    options: { quiet?: boolean } = {},
  ): Promise<LogBundle | null> {
    const attempt = async (): Promise<LogBundle | null> => {
      const doc = await this.bundles.get(id);
      if (!doc) return null;
      const changed = change(fromStored(doc));
      if (!changed) return null;
      if (options.quiet) return fromStored(await this.bundles.replace({ ...changed, id, version: doc.version }));
      await this.store.commit([
        write.replace(this.bundles, { ...changed, id, version: doc.version }),
        this.announce(changed),
      ]);
      this.outbox.kick();
      return { ...changed, id };
    };
    // A conflict is another write in between: read again and apply `change` to that.
    return pRetry(attempt, {
      retries: 5,
      minTimeout: 0,
      maxTimeout: 0,
      shouldRetry: ({ error }) => error instanceof VersionConflictError,
    });
  }

  private announce(bundle: LogBundle): Write {
    return this.outbox.add(logBundleChanged, toMessage(bundle), { key: bundle.id });
  }

  /** Bundles still to collect or collecting whose lease ran out before `nowMs`: their replica is gone. */
  async findStale(nowMs: number, first = 100): Promise<LogBundle[]> {
    const page = await this.bundles.find({
      where: { status: { in: [...PENDING_STATUSES] }, leaseUntil: { lt: nowMs } },
      first,
    });
    return page.nodes.map(fromStored);
  }

  /** Deletes the bundles that expired before `now`; returns how many. */
  deleteExpired(now: Date): Promise<number> {
    return this.bundles.deleteBefore('expiresAt', now.toISOString());
  }
}

function fromStored(doc: StoredBundle): LogBundle {
  const { version: _version, ...bundle } = doc;
  return bundle;
}
