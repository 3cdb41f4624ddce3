import {
  DuplicateKeyError,
  VersionConflictError,
  write,
  type Collection,
  type Store,
  type StoredDoc,
} from '@fleetgraph/kit';
import { SAMPLE_WIDTH } from '../domain/usage.js';
import type { HealthStore, SampleBucket, StoredClusterHealth, StoredClusterNodes, Versioned } from '../ingest/ports.js';

type HealthDoc = StoredDoc & StoredClusterHealth;
type NodesDoc = StoredDoc & StoredClusterNodes;
type BucketDoc = StoredDoc & SampleBucket;

const PAGE = 1000;

/**
 * The health service's data in its store: per cluster, its health state (`cluster_health`,
 * small, written often) and its nodes and services (`cluster_nodes`, larger, written when they
 * change), and usage samples in time buckets (`usage_samples`, one document per cluster and
 * bucket span, dropped by `deleteBefore` past the retention).
 */
export class HealthRepository implements HealthStore {
  private constructor(
    private readonly store: Store,
    private readonly clusters: Collection<HealthDoc>,
    private readonly nodes: Collection<NodesDoc>,
    private readonly samples: Collection<BucketDoc>,
  ) {}

  static async open(store: Store): Promise<HealthRepository> {
    const clusters = await store.collection<HealthDoc>({
      name: 'cluster_health',
      indexes: [{ fields: ['tenantId', 'projectId'] }],
    });
    const nodes = await store.collection<NodesDoc>({ name: 'cluster_nodes', indexes: [] });
    const samples = await store.collection<BucketDoc>({
      name: 'usage_samples',
      indexes: [{ fields: ['clusterId', 'end'] }, { fields: ['end'] }],
    });
    return new HealthRepository(store, clusters, nodes, samples);
  }

  async *loadAll(): AsyncIterable<{
    health: StoredClusterHealth;
    version: number;
    nodes: { doc: StoredClusterNodes; version: number } | null;
  }> {
    let after: string | null = null;
    do {
      const page = await this.clusters.find({ first: PAGE, after });
      for (const stored of page.nodes) {
        const { version, ...health } = stored;
        const nodes = await this.nodes.get(health.id);
        if (!nodes) {
          yield { health, version, nodes: null };
          continue;
        }
        const { version: nodesVersion, ...doc } = nodes;
        yield { health, version, nodes: { doc, version: nodesVersion } };
      }
      after = page.hasNextPage ? page.endCursor : null;
    } while (after);
  }

  save(doc: StoredClusterHealth, version: number | null): Promise<number> {
    return upsert(this.clusters, doc, version);
  }

  saveNodes(doc: StoredClusterNodes, version: number | null): Promise<number> {
    return upsert(this.nodes, doc, version);
  }

  saveAll(docs: readonly Versioned<StoredClusterHealth>[]): Promise<number[]> {
    return commitAll(this.store, this.clusters, docs);
  }

  saveNodesAll(docs: readonly Versioned<StoredClusterNodes>[]): Promise<number[]> {
    return commitAll(this.store, this.nodes, docs);
  }

  async saveBuckets(buckets: readonly SampleBucket[]): Promise<void> {
    await this.store.commit(buckets.map((bucket) => write.insert(this.samples, bucketDoc(bucket))));
  }

  async remove(clusterId: string): Promise<void> {
    await this.clusters.delete(clusterId);
    await this.nodes.delete(clusterId);
    await this.samples.deleteMany({ clusterId });
  }

  async saveBucket(bucket: SampleBucket): Promise<void> {
    const doc = bucketDoc(bucket);
    try {
      await this.samples.insert(doc);
    } catch (error) {
      if (!(error instanceof DuplicateKeyError)) throw error;
      // The same span written before a restart: merge the samples.
      const current = await this.samples.get(doc.id);
      if (!current) return this.saveBucket(bucket);
      await this.samples.replace({ ...current, samples: mergeSamples(current.samples, bucket.samples) });
    }
  }

  async buckets(clusterId: string, from: number, to: number): Promise<number[][]> {
    const chunks: number[][] = [];
    let after: string | null = null;
    do {
      const page = await this.samples.find({
        where: { clusterId, end: { gt: from } },
        orderBy: [{ field: 'end' }],
        first: PAGE,
        after,
      });
      for (const bucket of page.nodes) if (bucket.start <= to) chunks.push(bucket.samples);
      after = page.hasNextPage ? page.endCursor : null;
    } while (after);
    return chunks;
  }

  dropSamplesBefore(time: number): Promise<number> {
    return this.samples.deleteBefore('end', time);
  }
}

const bucketDoc = (bucket: SampleBucket) => ({ id: `${bucket.clusterId}:${bucket.start}`, ...bucket });

/**
 * Writes documents at the versions last read or written (null: new) in one commit, all or none.
 * The store starts a document at version 1 and adds one at each write: those are the new versions.
 */
async function commitAll<T extends { id: string }>(
  store: Store,
  collection: Collection<T & StoredDoc>,
  docs: readonly Versioned<T>[],
): Promise<number[]> {
  await store.commit(
    docs.map(({ doc, version }) =>
      version === null
        ? write.insert(collection, doc as never)
        : write.replace(collection, { ...doc, version } as T & StoredDoc),
    ),
  );
  return docs.map(({ version }) => (version ?? 0) + 1);
}

/**
 * Writes a document at the version last read or written (null: new). Written meanwhile by
 * someone else (a previous run of this service, or an insert that raced): this writer owns the
 * cluster, so it writes over it.
 */
async function upsert<T extends { id: string }>(
  collection: Collection<T & StoredDoc>,
  doc: T,
  version: number | null,
): Promise<number> {
  try {
    if (version === null) return (await collection.insert(doc as never)).version;
    return (await collection.replace({ ...doc, version } as T & StoredDoc)).version;
  } catch (error) {
    if (!(error instanceof DuplicateKeyError) && !(error instanceof VersionConflictError)) throw error;
    const current = await collection.get(doc.id);
    if (!current) return (await collection.insert(doc as never)).version;
    return (await collection.replace({ ...doc, version: current.version } as T & StoredDoc)).version;
  }
}

/** Two flat sample arrays as one, in time order, each time once. */
export function mergeSamples(a: readonly number[], b: readonly number[]): number[] {
  const byTime = new Map<number, number[]>();
  for (const chunk of [a, b]) {
    for (let i = 0; i + SAMPLE_WIDTH <= chunk.length; i += SAMPLE_WIDTH)
      byTime.set(chunk[i]!, chunk.slice(i, i + SAMPLE_WIDTH));
  }
  return [...byTime.entries()].sort(([x], [y]) => x - y).flatMap(([, sample]) => sample);
}
