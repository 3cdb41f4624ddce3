import type { Logger } from '@fleetgraph/kit';
import type { HealthStore, SampleBucket } from './ports.js';
import { NODES_PERSIST_FACTOR, storedHealth, storedNodes, type ClusterRecord } from './records.js';
import type { UsageSamples } from './samples.js';

/** Longest stretch a flush runs before letting reports in. */
const FLUSH_SLICE_MS = 5;
/** Documents written in one commit (one SQLite transaction: about 50 small documents a millisecond). */
const WRITE_BATCH = 50;

/** What writing a cluster's health document and writing its nodes document differ in. */
interface RecordKind {
  name: 'health' | 'nodes';
  /** Clusters whose document of this kind is to be written. */
  dirty: Set<string>;
  /** Writes the documents of `records` in one commit. @returns their new versions */
  saveAll(records: readonly ClusterRecord[], now: number): Promise<number[]>;
  /** Writes one record's document. @returns its new version */
  save(record: ClusterRecord, now: number): Promise<number>;
  /** Notes a document written at `version`. */
  written(record: ClusterRecord, version: number, now: number): void;
}

export interface WriteBehindOptions {
  store: HealthStore;
  log: Logger;
  now: () => number;
  /** The ingest's records, by cluster id. */
  records: ReadonlyMap<string, ClusterRecord>;
  samples: UsageSamples;
  /** A cluster's health is written at least this often, its nodes and services `NODES_PERSIST_FACTOR` times less often. */
  persistEveryMs: number;
  /** Whether this replica writes now: when not, a flush forgets what it would have written (the writing replica writes it). */
  writing: () => boolean;
}

/**
 * Writes the ingest's records off the report path: a report only marks what is to be written (a
 * cluster whose health, nodes or services changed, or whose periodic write is due), and `flush`,
 * called every second or so, writes closed sample buckets, then health documents, then nodes
 * documents, one flush at a time, yielding to reports as it goes. A failed write stays marked for
 * the next flush.
 */
export class WriteBehind {
  /** Clusters whose health document is to be written, and whose nodes document. */
  readonly #dirty = new Set<string>();
  readonly #dirtyNodes = new Set<string>();
  #flushing: Promise<void> | null = null;
  readonly #stats = { writes: 0, writeErrors: 0 };
  /** Health documents, then nodes documents, in the order a flush writes them. */
  readonly #kinds: readonly RecordKind[];

  constructor(private readonly o: WriteBehindOptions) {
    const { store } = o;
    this.#kinds = [
      {
        name: 'health',
        dirty: this.#dirty,
        saveAll: (records, now) =>
          store.saveAll(records.map((record) => ({ doc: storedHealth(record, now), version: record.version }))),
        save: (record, now) => store.save(storedHealth(record, now), record.version),
        written(record, version, now) {
          record.version = version;
          record.savedAt = now;
        },
      },
      {
        name: 'nodes',
        dirty: this.#dirtyNodes,
        saveAll: (records, now) =>
          store.saveNodesAll(
            records.map((record) => ({ doc: storedNodes(record, now), version: record.nodesVersion })),
          ),
        save: (record, now) => store.saveNodes(storedNodes(record, now), record.nodesVersion),
        written(record, version, now) {
          record.nodesVersion = version;
          record.nodesSavedAt = now;
        },
      },
    ];
  }

  /** Writes done and failed since start. */
  get stats(): { writes: number; writeErrors: number } {
    return { ...this.#stats };
  }

  /** Documents and sample buckets waiting to be written. */
  get pending(): number {
    return this.#dirty.size + this.#dirtyNodes.size + this.o.samples.pending;
  }

  /**
   * After a report taken at `now`: the nodes are to be written when their shape changed (a new
   * cluster's first nodes wait for the periodic write, see `newRecord`) or are due, the health
   * when due.
   */
  reported(record: ClusterRecord, now: number, shape: number, first: boolean): void {
    if (first) record.shape = shape;
    if (shape !== record.shape || now - record.nodesSavedAt >= this.o.persistEveryMs * NODES_PERSIST_FACTOR) {
      record.shape = shape;
      this.#dirtyNodes.add(record.id);
    }
    if (now - record.savedAt >= this.o.persistEveryMs) this.#dirty.add(record.id);
  }

  /** The cluster's health changed: written at once, unless the cluster has never been written (see `newRecord`). */
  healthChanged(record: ClusterRecord): void {
    if (record.version !== null) this.#dirty.add(record.id);
  }

  /** Writes a cluster's health and nodes at the next flush, whether they changed or not. */
  rewrite(record: ClusterRecord): void {
    this.#dirty.add(record.id);
    this.#dirtyNodes.add(record.id);
  }

  /** Writes nothing more of a cluster. */
  forget(clusterId: string): void {
    this.#dirty.delete(clusterId);
    this.#dirtyNodes.delete(clusterId);
    this.o.samples.forget(clusterId);
  }

  /** Writes what changed: closed sample buckets, then changed clusters. One flush at a time. */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => (this.#flushing = null));
    return this.#flushing;
  }

  /** Writes everything not yet written, open sample buckets included (at shutdown). */
  async drain(): Promise<void> {
    await this.#flushing;
    for (const record of this.o.records.values()) {
      this.o.samples.close(record);
      if ((record.state.lastHeartbeatAt ?? 0) > record.savedAt || record.changedAt > record.savedAt)
        this.#dirty.add(record.id);
      if ((record.nodesObservedAt ?? 0) > record.nodesSavedAt) this.#dirtyNodes.add(record.id);
    }
    await this.flush();
  }

  async #flush(): Promise<void> {
    if (!this.o.writing()) {
      this.o.samples.take();
      this.#dirty.clear();
      this.#dirtyNodes.clear();
      return;
    }
    // The store's adapters may do their work synchronously (SQLite): without yielding, a flush
    // of thousands of documents would hold the event loop, and with it the reports, for seconds.
    let slice = performance.now();
    const yieldNow = async () => {
      if (performance.now() - slice < FLUSH_SLICE_MS) return;
      await new Promise((resolve) => setImmediate(resolve));
      slice = performance.now();
    };
    const buckets = this.o.samples.take();
    for (let i = 0; i < buckets.length; i += WRITE_BATCH) {
      await this.#writeBuckets(buckets.slice(i, i + WRITE_BATCH));
      await yieldNow();
    }
    for (const kind of this.#kinds) {
      const ids = [...kind.dirty];
      kind.dirty.clear();
      for (let i = 0; i < ids.length; i += WRITE_BATCH) {
        const records: ClusterRecord[] = [];
        for (const id of ids.slice(i, i + WRITE_BATCH)) {
          const record = this.o.records.get(id);
          if (record) records.push(record);
        }
        await this.#writeRecords(kind, records);
        await yieldNow();
      }
    }
  }

  /**
   * Writes closed buckets, all in one commit (a fraction of the cost of one commit each); when
   * that fails (one of a span stored before a restart, to merge), each alone.
   */
  async #writeBuckets(buckets: SampleBucket[]): Promise<void> {
    const { store, log } = this.o;
    if (buckets.length > 1) {
      try {
        await store.saveBuckets(buckets);
        this.#stats.writes += buckets.length;
        return;
      } catch {
        // Each alone, below, which merges and says what failed.
      }
    }
    for (const bucket of buckets) {
      try {
        await store.saveBucket(bucket);
        this.#stats.writes++;
      } catch (error) {
        this.#stats.writeErrors++;
        log.error({ err: error, clusterId: bucket.clusterId }, 'could not write usage samples');
      }
    }
  }

  /**
   * Writes the health or the nodes document of clusters, all in one commit; when that fails (one
   * written meanwhile by another writer, or a store that cannot), each alone. A failed write is
   * marked for the next flush.
   */
  async #writeRecords(kind: RecordKind, records: ClusterRecord[]): Promise<void> {
    if (records.length > 1) {
      const now = this.o.now();
      try {
        const versions = await kind.saveAll(records, now);
        for (const [k, record] of records.entries()) kind.written(record, versions[k]!, now);
        this.#stats.writes += records.length;
        return;
      } catch {
        // Each alone, below, which resolves a version written meanwhile and says what failed.
      }
    }
    for (const record of records) {
      const now = this.o.now();
      try {
        kind.written(record, await kind.save(record, now), now);
        this.#stats.writes++;
      } catch (error) {
        this.#stats.writeErrors++;
        kind.dirty.add(record.id);
        this.o.log.error({ err: error, clusterId: record.id }, `could not write cluster ${kind.name}`);
      }
    }
  }
}
