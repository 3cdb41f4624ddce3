/**
 * The one test suite every store adapter passes (`sqlite.test.ts`, `mongodb.test.ts`): what
 * the `Store` interface promises, checked against a real database.
 *
 * Over 400 lines on purpose: it is one suite, and a promise of the interface checked in one
 * adapter's file rather than here would no longer be checked against the other.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Collection,
  DuplicateKeyError,
  type Filter,
  type FindOptions,
  InvalidQueryError,
  type NewDoc,
  type Page,
  type Scalar,
  type SortKey,
  type Store,
  type StoredDoc,
  VersionConflictError,
  write,
} from './store.js';

export interface StoreContractOptions {
  /**
   * Whether every `makeStore()` of the suite opens the same data (a file, a database), so that
   * a document written before `close()` can be read after reopening. @default false
   */
  durable?: boolean;
}

// ---- documents and their builders ----

interface Cluster extends StoredDoc {
  tenantId: string;
  name: string;
  region: string;
  nodeCount: number;
  createdAt: string;
  /** A sort field with ties, nulls and gaps. */
  rank?: number | null;
  paused: boolean;
  /** Not covered by any index. */
  description: string;
  spec: {
    kubernetesVersion: string;
    pools: { name: string; size: number; labels: Record<string, string>; taints: string[] }[];
    autoscaling: { min: number; max: number; targetUtilization: number } | null;
    annotations: Record<string, string>;
  };
}

const clusterIndexes = [
  { fields: ['tenantId', 'name'], unique: true },
  { fields: ['tenantId', 'createdAt'] },
  { fields: ['region'] },
  { fields: ['nodeCount'] },
  { fields: ['rank'] },
  { fields: ['paused'] },
] as const;

interface Sample extends StoredDoc {
  clusterId: string;
  time: string;
  cpu: number;
}

const sampleIndexes = [{ fields: ['clusterId', 'time'] }, { fields: ['time'] }] as const;

/** A field holding numbers, strings and nulls, to check that comparisons keep to one type. */
interface Item extends StoredDoc {
  value: Scalar;
}

let serial = 0;

function minute(n: number): string {
  return new Date(Date.UTC(2026, 0, 1) + n * 60_000).toISOString();
}

function aCluster(overrides: Partial<NewDoc<Cluster>> = {}): NewDoc<Cluster> {
  const n = ++serial;
  return {
    id: `cl-${String(n).padStart(6, '0')}`,
    tenantId: 'tenant-a',
    name: `cluster-${n}`,
    region: 'eu-west-1',
    nodeCount: 3,
    createdAt: minute(n),
    paused: false,
    description: `cluster number ${n}`,
    spec: {
      kubernetesVersion: '1.31.2',
      pools: [{ name: 'default', size: 3, labels: { 'fleetgraph.dev/pool': 'default' }, taints: [] }],
      autoscaling: null,
      annotations: {},
    },
    ...overrides,
  };
}

function aSample(clusterId: string, time: string, overrides: Partial<NewDoc<Sample>> = {}): NewDoc<Sample> {
  return { id: `sm-${String(++serial).padStart(6, '0')}`, clusterId, time, cpu: 0.5, ...overrides };
}

/** A deterministic shuffle, so that insertion order says nothing about any sort order. */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  let seed = 42;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// ---- the order the store promises, computed independently ----

/** Null (or missing) first, then numbers, then strings, as both adapters order them. */
function compareScalars(a: unknown, b: unknown): number {
  const typeRank = (v: unknown) => (v === null || v === undefined ? 0 : typeof v === 'number' ? 1 : 2);
  if (typeRank(a) !== typeRank(b)) return typeRank(a) - typeRank(b);
  if (typeRank(a) === 0) return 0;
  return (a as string | number) < (b as string | number) ? -1 : (a as string | number) > (b as string | number) ? 1 : 0;
}

/** Sorted as `orderBy` says, `id` last in the direction of the last key. */
function inOrder<T extends StoredDoc>(docs: readonly NewDoc<T>[], orderBy: readonly SortKey<T>[] = []): string[] {
  const keys: { field: string; direction?: 'asc' | 'desc' }[] = [...orderBy];
  if (!keys.some((key) => key.field === 'id')) keys.push({ field: 'id', direction: keys.at(-1)?.direction ?? 'asc' });
  return [...docs]
    .sort((a, b) => {
      for (const { field, direction } of keys) {
        const c = compareScalars((a as Record<string, unknown>)[field], (b as Record<string, unknown>)[field]);
        if (c !== 0) return direction === 'desc' ? -c : c;
      }
      return 0;
    })
    .map((doc) => doc.id);
}

async function pageThrough<T extends StoredDoc>(collection: Collection<T>, options: FindOptions<T>, first: number) {
  const pages: Page<T>[] = [];
  let after: string | null = null;
  do {
    const page: Page<T> = await collection.find({ ...options, first, after });
    pages.push(page);
    after = page.hasNextPage ? page.endCursor : null;
  } while (after !== null && pages.length < 1000);
  return { pages, ids: pages.flatMap((page) => page.nodes.map((node) => node.id)) };
}

function ids(page: Page<StoredDoc>): string[] {
  return page.nodes.map((node) => node.id);
}

function cursorOf(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function describeStoreContract(
  name: string,
  makeStore: () => Promise<Store>,
  options: StoreContractOptions = {},
): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let collections = 0;

    beforeEach(async () => {
      store = await makeStore();
    });

    afterEach(async () => {
      await store.close();
    });

    // Every test has collections of its own, so suites may share one database.
    const unique = (base: string) => `${base}_${++collections}_${Date.now().toString(36)}`;
    const clusters = (collectionName = unique('clusters')) =>
      store.collection<Cluster>({ name: collectionName, indexes: clusterIndexes });
    const samples = () => store.collection<Sample>({ name: unique('samples'), indexes: sampleIndexes });
    const items = () => store.collection<Item>({ name: unique('items'), indexes: [{ fields: ['value'] }] });

    describe('documents', () => {
      it('should find nothing for an unknown or empty id, and refuse to store an empty one', async () => {
        const coll = await clusters();
        expect(await coll.get('nobody')).toBeNull();
        expect(await coll.get('')).toBeNull();
        await expect(coll.insert(aCluster({ id: '' }))).rejects.toThrow(InvalidQueryError);
      });

      it('should return an inserted document as it was given, nested JSON included', async () => {
        const coll = await clusters();
        const doc = aCluster({
          description: 'Ünïcødé, "quotes", \\ and emoji 🚀',
          rank: null,
          paused: true,
          spec: {
            kubernetesVersion: '1.30.0',
            pools: [
              {
                name: 'système',
                size: 0,
                labels: { 'topology.kubernetes.io/zone': 'eu-west-1a' },
                taints: ['gpu=true:NoSchedule'],
              },
              { name: 'spot', size: 12, labels: {}, taints: [] },
            ],
            autoscaling: { min: -1, max: 1e6, targetUtilization: 0.65 },
            annotations: { 'a.b/c': '' },
          },
        });

        const inserted = await coll.insert(doc);

        expect(inserted).toEqual({ ...doc, version: 1 });
        expect(await coll.get(doc.id)).toEqual({ ...doc, version: 1 });
      });

      it('should return null for an id that is not stored', async () => {
        const coll = await clusters();
        await coll.insert(aCluster());

        expect(await coll.get('cl-missing')).toBeNull();
      });

      it('should start the version at 1 and increment it on every replace', async () => {
        const coll = await clusters();
        const v1 = await coll.insert(aCluster());
        const v2 = await coll.replace({ ...v1, nodeCount: 4 });
        const v3 = await coll.replace({ ...v2, nodeCount: 5 });

        expect([v1.version, v2.version, v3.version]).toEqual([1, 2, 3]);
        expect(await coll.get(v1.id)).toEqual({ ...v1, nodeCount: 5, version: 3 });
      });

      it('should reject a stale replace with VersionConflictError and leave the document unchanged', async () => {
        const coll = await clusters();
        const read = await coll.insert(aCluster());
        await coll.replace({ ...read, nodeCount: 5 });

        const stale = coll.replace({ ...read, nodeCount: 9 });

        await expect(stale).rejects.toThrow(VersionConflictError);
        await expect(stale).rejects.toMatchObject({ collection: coll.name, id: read.id, expectedVersion: 1 });
        expect(await coll.get(read.id)).toEqual({ ...read, nodeCount: 5, version: 2 });
      });

      it('should reject a replace of a deleted document with VersionConflictError, creating nothing', async () => {
        const coll = await clusters();
        const read = await coll.insert(aCluster());
        await coll.delete(read.id);

        await expect(coll.replace({ ...read, nodeCount: 9 })).rejects.toThrow(VersionConflictError);
        expect(await coll.get(read.id)).toBeNull();
      });

      it('should lose no increment when 20 read-modify-write loops race, each retrying on conflict', async () => {
        const coll = await clusters();
        const { id } = await coll.insert(aCluster({ nodeCount: 0 }));
        let conflicts = 0;
        const incrementFiveTimes = async () => {
          for (let done = 0; done < 5; ) {
            const current = (await coll.get(id))!;
            try {
              await coll.replace({ ...current, nodeCount: current.nodeCount + 1 });
              done++;
            } catch (error) {
              if (!(error instanceof VersionConflictError)) throw error;
              conflicts++;
            }
          }
        };

        await Promise.all(Array.from({ length: 20 }, incrementFiveTimes));

        expect(await coll.get(id)).toMatchObject({ nodeCount: 100, version: 101 });
        expect(conflicts).toBeGreaterThan(0);
      });

      it('should reject a duplicate id with DuplicateKeyError, keeping the first document', async () => {
        const coll = await clusters();
        const first = await coll.insert(aCluster());

        await expect(coll.insert(aCluster({ id: first.id }))).rejects.toThrow(DuplicateKeyError);
        expect(await coll.get(first.id)).toEqual(first);
      });

      it('should reject a unique index clash on insert and on replace with DuplicateKeyError', async () => {
        const coll = await clusters();
        const taken = await coll.insert(aCluster({ tenantId: 'tenant-a', name: 'prod' }));
        const other = await coll.insert(aCluster({ tenantId: 'tenant-a', name: 'staging' }));

        await expect(coll.insert(aCluster({ tenantId: 'tenant-a', name: 'prod' }))).rejects.toThrow(DuplicateKeyError);
        await expect(coll.replace({ ...other, name: 'prod' })).rejects.toThrow(DuplicateKeyError);
        await expect(coll.insert(aCluster({ tenantId: 'tenant-b', name: 'prod' }))).resolves.toMatchObject({
          version: 1,
        });
        expect(await coll.get(other.id)).toEqual(other);
        expect(await coll.count({ tenantId: 'tenant-a', name: 'prod' })).toBe(1);
        expect(await coll.get(taken.id)).toEqual(taken);
      });

      it('should refuse a top-level field starting with $, on insert, replace and commit alike', async () => {
        const coll = await clusters();
        const doc = await coll.insert(aCluster());
        const dollar = { $set: { nodeCount: 9 } };

        await expect(coll.insert({ ...aCluster(), ...dollar })).rejects.toThrow(InvalidQueryError);
        await expect(coll.replace({ ...doc, ...dollar })).rejects.toThrow(InvalidQueryError);
        await expect(
          store.commit([write.insert(coll, { ...aCluster(), $where: 'true' } as NewDoc<Cluster>)]),
        ).rejects.toThrow(InvalidQueryError);
        expect(await coll.get(doc.id)).toEqual(doc);
        expect(await coll.count()).toBe(1);
      });

      it('should delete a document only at the expected version', async () => {
        const coll = await clusters();
        const doc = await coll.insert(aCluster());
        await coll.replace(doc);

        expect(await coll.delete(doc.id, 1)).toBe(false);
        expect(await coll.get(doc.id)).toMatchObject({ version: 2 });
        expect(await coll.delete(doc.id, 2)).toBe(true);
        expect(await coll.get(doc.id)).toBeNull();
        expect(await coll.delete(doc.id)).toBe(false);
      });
    });

    describe('filters', () => {
      it('should filter by equality, membership and null, a missing field counting as null', async () => {
        const coll = await clusters();
        const eu = await coll.insert(aCluster({ region: 'eu-west-1', rank: 1, paused: true }));
        const us = await coll.insert(aCluster({ region: 'us-east-1', rank: null }));
        const ap = await coll.insert(aCluster({ region: 'ap-south-1' }));
        const otherTenant = await coll.insert(aCluster({ tenantId: 'tenant-b', region: 'eu-west-1', rank: 2 }));
        const find = async (where: FindOptions<Cluster>['where']) => ids(await coll.find({ where }));

        expect(await find({ region: 'eu-west-1' })).toEqual([eu.id, otherTenant.id]);
        expect(await find({ region: { eq: 'eu-west-1' }, tenantId: 'tenant-a' })).toEqual([eu.id]);
        expect(await find({ region: { in: ['us-east-1', 'ap-south-1'] } })).toEqual([us.id, ap.id]);
        expect(await find({ region: { in: [] } })).toEqual([]);
        expect(await find({ rank: null })).toEqual([us.id, ap.id]);
        expect(await find({ rank: { in: [2, null] } })).toEqual([us.id, ap.id, otherTenant.id]);
        expect(await find({ paused: true })).toEqual([eu.id]);
        expect(await find({ paused: false })).toEqual([us.id, ap.id, otherTenant.id]);
        expect(await find({})).toEqual([eu.id, us.id, ap.id, otherTenant.id]);
      });

      it('should filter by ranges, comparing numbers as numbers and strings as strings', async () => {
        const coll = await clusters();
        const [n2, n9, n10, n100] = await Promise.all(
          [2, 9, 10, 100].map((nodeCount, i) =>
            coll.insert(aCluster({ nodeCount, name: `cluster-${[5, 9, 10, 100][i]}` })),
          ),
        );
        const find = async (where: FindOptions<Cluster>['where']) => ids(await coll.find({ where }));

        expect(await find({ nodeCount: { gt: 9 } })).toEqual([n10!.id, n100!.id]);
        expect(await find({ nodeCount: { gte: 9, lt: 100 } })).toEqual([n9!.id, n10!.id]);
        expect(await find({ nodeCount: { lte: 2 } })).toEqual([n2!.id]);
        // As strings, 'cluster-10' and 'cluster-100' sort before 'cluster-5'.
        expect(await find({ tenantId: 'tenant-a', name: { lt: 'cluster-5' } })).toEqual([n10!.id, n100!.id]);
        expect(await find({ createdAt: { gt: n2!.createdAt, lte: n10!.createdAt } })).toEqual([n9!.id, n10!.id]);
      });

      it('should compare a range bound only with values of its own type', async () => {
        const coll = await items();
        await Promise.all([5, 50, '5', '50', 'zebra', null].map((value, i) => coll.insert({ id: `it-${i}`, value })));
        const find = async (where: FindOptions<Item>['where']) =>
          (await coll.find({ where })).nodes.map((node) => node.value);

        expect(await find({ value: { gt: 0 } })).toEqual([5, 50]);
        expect(await find({ value: { lt: 'm' } })).toEqual(['5', '50']);
        expect(await find({ value: { gte: '' } })).toEqual(['5', '50', 'zebra']);
        expect(await find({ value: { lt: 10 } })).toEqual([5]);
        expect(await find({ value: 5 })).toEqual([5]);
        expect(await find({ value: '5' })).toEqual(['5']);
      });

      it('should keep booleans and numbers apart in equality, membership and ranges', async () => {
        const coll = await items();
        const values: Scalar[] = [true, false, 1, 0, 5, '5', null];
        await Promise.all(values.map((value, i) => coll.insert({ id: `it-${i}`, value })));
        const find = async (where: FindOptions<Item>['where']) =>
          (await coll.find({ where })).nodes.map((node) => node.value);

        expect(await find({ value: 1 })).toEqual([1]);
        expect(await find({ value: 0 })).toEqual([0]);
        expect(await find({ value: true })).toEqual([true]);
        expect(await find({ value: { eq: false } })).toEqual([false]);
        expect(await find({ value: 5 })).toEqual([5]);
        expect(await find({ value: '5' })).toEqual(['5']);
        expect(await find({ value: null })).toEqual([null]);
        expect(await find({ value: { in: [1, '5'] } })).toEqual([1, '5']);
        expect(await find({ value: { in: [true, 0] } })).toEqual([true, 0]);
        expect(await find({ value: { in: [false, null] } })).toEqual([false, null]);
        expect(await find({ value: { gt: 0 } })).toEqual([1, 5]);
        expect(await find({ value: { gte: 0, lt: 5 } })).toEqual([1, 0]);
        expect(await find({ value: { lte: 1 } })).toEqual([1, 0]);
        expect(await find({ value: { gte: '' } })).toEqual(['5']);
        expect(await find({ value: { eq: true, gte: 0 } })).toEqual([]);
        expect(await coll.count({ value: 1 })).toBe(1);
        expect(await coll.deleteBefore('value', 1)).toBe(1);
        expect(await coll.deleteMany({ value: true })).toBe(1);
        expect((await coll.find()).nodes.map((node) => node.value)).toEqual([false, 1, 5, '5', null]);
      });

      it('should filter and sort on id without an index for it', async () => {
        const coll = await clusters();
        const docs = await Promise.all([1, 2, 3, 4].map(() => coll.insert(aCluster())));
        const [a, b, c, d] = docs.map((doc) => doc.id) as [string, string, string, string];

        expect(ids(await coll.find({ where: { id: { in: [d, b] } } }))).toEqual([b, d]);
        expect(
          ids(await coll.find({ where: { id: { gt: b } }, orderBy: [{ field: 'id', direction: 'desc' }] })),
        ).toEqual([d, c]);
        expect(ids(await coll.find({ where: { id: a } }))).toEqual([a]);
      });

      it('should reject filters and sorts on fields no index covers, changing nothing', async () => {
        const coll = await clusters();
        await coll.insert(aCluster({ description: 'x' }));
        const unindexed: Filter<Cluster> = { description: 'x' };
        const byDescription = [{ field: 'description' as const }];

        await expect(coll.find({ where: unindexed })).rejects.toThrow(InvalidQueryError);
        await expect(coll.find({ orderBy: byDescription })).rejects.toThrow(InvalidQueryError);
        await expect(coll.count(unindexed)).rejects.toThrow(InvalidQueryError);
        await expect(coll.deleteMany(unindexed)).rejects.toThrow(InvalidQueryError);
        await expect(coll.keepFirst(unindexed, [{ field: 'createdAt' }], 0)).rejects.toThrow(InvalidQueryError);
        await expect(coll.keepFirst({ tenantId: 'tenant-a' }, byDescription, 0)).rejects.toThrow(InvalidQueryError);
        await expect(coll.deleteBefore('description', 'y')).rejects.toThrow(InvalidQueryError);
        expect(await coll.count()).toBe(1);
      });

      it('should reject malformed filters: an unknown condition, an undefined value, an object value', async () => {
        const coll = await clusters();
        await coll.insert(aCluster());
        const malformed = [
          { region: { like: 'eu-%' } },
          { region: undefined },
          { nodeCount: { gt: undefined } },
          { createdAt: new Date() },
          { nodeCount: { gt: Number.NaN } },
          { region: { in: 'eu-west-1' } },
        ] as unknown as FindOptions<Cluster>['where'][];

        for (const where of malformed) {
          await expect(coll.find({ where }), JSON.stringify(where)).rejects.toThrow(InvalidQueryError);
          await expect(coll.deleteMany(where!), JSON.stringify(where)).rejects.toThrow(InvalidQueryError);
        }
        expect(await coll.count()).toBe(1);
      });
    });

    describe('sort and pagination', () => {
      it('should sort by several keys, ascending and descending', async () => {
        const coll = await clusters();
        const docs = shuffled(
          Array.from({ length: 24 }, (_, i) =>
            aCluster({ region: ['eu', 'us', 'ap'][i % 3]!, nodeCount: i % 4, tenantId: `tenant-${i % 2}` }),
          ),
        );
        for (const doc of docs) await coll.insert(doc);
        const orders: SortKey<Cluster>[][] = [
          [{ field: 'region' }, { field: 'nodeCount', direction: 'desc' }],
          [
            { field: 'region', direction: 'desc' },
            { field: 'nodeCount', direction: 'desc' },
          ],
          [{ field: 'tenantId', direction: 'desc' }, { field: 'createdAt' }],
          [{ field: 'nodeCount' }, { field: 'id', direction: 'desc' }],
        ];

        for (const orderBy of orders) {
          expect(ids(await coll.find({ orderBy, first: 100 })), JSON.stringify(orderBy)).toEqual(
            inOrder(docs, orderBy),
          );
        }
      });

      describe('over 250 documents in pages of 7', () => {
        let coll: Collection<Cluster>;
        let docs: NewDoc<Cluster>[];

        beforeEach(async () => {
          coll = await clusters();
          docs = shuffled(
            Array.from({ length: 250 }, (_, i) =>
              aCluster({
                tenantId: i % 3 === 0 ? 'tenant-b' : 'tenant-a',
                region: ['eu', 'us', 'ap', 'sa'][i % 4]!,
                // Ties (ten values), nulls and missing values.
                ...(i % 7 === 0 ? {} : { rank: i % 11 === 0 ? null : i % 10 }),
              }),
            ),
          );
          await Promise.all(docs.map((doc) => coll.insert(doc)));
        });

        it.each<{ title: string; options: FindOptions<Cluster> }>([
          { title: 'by id', options: {} },
          { title: 'by unique times, newest first', options: { orderBy: [{ field: 'createdAt', direction: 'desc' }] } },
          { title: 'by a field with ties, descending', options: { orderBy: [{ field: 'rank', direction: 'desc' }] } },
          { title: 'by a field with ties and nulls, ascending', options: { orderBy: [{ field: 'rank' }] } },
          {
            title: 'by two keys in mixed directions',
            options: { orderBy: [{ field: 'region' }, { field: 'rank', direction: 'desc' }] },
          },
          { title: 'within a filter', options: { where: { tenantId: 'tenant-a' }, orderBy: [{ field: 'createdAt' }] } },
          {
            title: 'within a range filter',
            options: { where: { rank: { gte: 3 } }, orderBy: [{ field: 'rank', direction: 'desc' }] },
          },
        ])('should visit every document exactly once, in order: $title', async ({ options }) => {
          const matching = docs.filter((doc) => {
            const where = options.where ?? {};
            if ('tenantId' in where && doc.tenantId !== where.tenantId) return false;
            if ('rank' in where && !(typeof doc.rank === 'number' && doc.rank >= 3)) return false;
            return true;
          });
          const expected = inOrder(matching, options.orderBy);

          const { pages, ids: visited } = await pageThrough(coll, options, 7);

          expect(visited).toEqual(expected);
          expect(new Set(visited).size).toBe(matching.length);
          expect(pages.map((page) => page.nodes.length)).toEqual(
            Array.from({ length: Math.ceil(matching.length / 7) }, (_, i) => Math.min(7, matching.length - 7 * i)),
          );
          expect(pages.map((page) => page.hasNextPage)).toEqual(pages.map((_, i) => i < pages.length - 1));
        });

        it('should return an empty last page after the last cursor', async () => {
          const { pages } = await pageThrough(coll, {}, 50);
          const last = pages.at(-1)!;

          expect(last.hasNextPage).toBe(false);
          expect(await coll.find({ after: last.endCursor })).toEqual({
            nodes: [],
            cursors: [],
            hasNextPage: false,
            endCursor: null,
          });
        });

        it("should resume right after any node of a page given that node's cursor", async () => {
          const options: FindOptions<Cluster> = { orderBy: [{ field: 'rank', direction: 'desc' }] };
          const whole = await coll.find({ ...options, first: 250 });
          const page = await coll.find({ ...options, first: 7 });

          expect(page.cursors).toHaveLength(7);
          expect(page.endCursor).toBe(page.cursors.at(-1));
          for (const [i, cursor] of page.cursors.entries()) {
            const next = await coll.find({ ...options, first: 3, after: cursor });
            expect(ids(next)).toEqual(ids(whole).slice(i + 1, i + 4));
          }
        });
      });

      it.each([
        ['not base64 JSON', 'not-a-cursor!'],
        ['empty', ''],
        ['an object', cursorOf({ id: 'cl-000001' })],
        ['too few values for the sort', cursorOf(['cl-000001'])],
        ['too many values for the sort', cursorOf([1, 2, 'cl-000001'])],
        ['an id that is not a string', cursorOf(['2026-01-01T00:00:00.000Z', 7])],
        ['a value that is not a scalar', cursorOf([{ a: 1 }, 'cl-000001'])],
      ])('should reject a malformed cursor: %s', async (_, after) => {
        const coll = await clusters();
        await coll.insert(aCluster());

        await expect(coll.find({ orderBy: [{ field: 'createdAt' }], after })).rejects.toThrow(InvalidQueryError);
      });

      it('should reject a page size that is not a non-negative integer', async () => {
        const coll = await clusters();

        await expect(coll.find({ first: -1 })).rejects.toThrow(InvalidQueryError);
        await expect(coll.find({ first: 2.5 })).rejects.toThrow(InvalidQueryError);
      });
    });

    describe('counting and deleting', () => {
      it('should count the documents matching a filter', async () => {
        const coll = await clusters();
        await Promise.all(
          Array.from({ length: 9 }, (_, i) => coll.insert(aCluster({ region: i < 4 ? 'eu' : 'us', nodeCount: i }))),
        );

        expect(await coll.count()).toBe(9);
        expect(await coll.count({ region: 'eu' })).toBe(4);
        expect(await coll.count({ region: 'us', nodeCount: { gte: 6 } })).toBe(3);
        expect(await coll.count({ region: 'ap' })).toBe(0);
      });

      it('should delete every document matching a filter and no other', async () => {
        const coll = await clusters();
        const docs = await Promise.all(
          Array.from({ length: 9 }, (_, i) => coll.insert(aCluster({ region: i < 4 ? 'eu' : 'us' }))),
        );

        expect(await coll.deleteMany({ region: 'eu' })).toBe(4);
        expect(await coll.deleteMany({ region: 'eu' })).toBe(0);
        expect(ids(await coll.find())).toEqual(docs.slice(4).map((doc) => doc.id));
      });

      it('should keep exactly the N newest samples of a key and leave other keys alone', async () => {
        const coll = await samples();
        const times = [1, 2, 3, 4, 5, 5, 5, 6, 7, 8].map(minute); // a tie across the boundary
        const c1 = await Promise.all(shuffled(times).map((time) => coll.insert(aSample('c1', time))));
        const c2 = await Promise.all([1, 2, 3, 4].map((n) => coll.insert(aSample('c2', minute(n)))));
        const newestFirst: SortKey<Sample>[] = [{ field: 'time', direction: 'desc' }];

        expect(await coll.keepFirst({ clusterId: 'c1' }, newestFirst, 5)).toBe(5);

        const kept = await coll.find({ where: { clusterId: 'c1' }, orderBy: newestFirst });
        expect(ids(kept)).toEqual(inOrder(c1, newestFirst).slice(0, 5));
        expect(await coll.count({ clusterId: 'c2' })).toBe(c2.length);
        expect(await coll.keepFirst({ clusterId: 'c1' }, newestFirst, 5)).toBe(0);
        expect(await coll.keepFirst({ clusterId: 'c2' }, newestFirst, 10)).toBe(0);
        expect(await coll.keepFirst({ clusterId: 'c2' }, newestFirst, 0)).toBe(4);
        expect(await coll.count()).toBe(5);
      });

      it('should delete the documents whose field is below a bound', async () => {
        const coll = await samples();
        await Promise.all([1, 2, 3, 4, 5, 6].map((n) => coll.insert(aSample(n % 2 ? 'c1' : 'c2', minute(n)))));

        expect(await coll.deleteBefore('time', minute(4))).toBe(3);

        expect((await coll.find({ orderBy: [{ field: 'time' }] })).nodes.map((s) => s.time)).toEqual(
          [4, 5, 6].map(minute),
        );
      });

      it('should compare a numeric retention bound as a number', async () => {
        const coll = await clusters();
        await Promise.all([9, 10, 100].map((nodeCount) => coll.insert(aCluster({ nodeCount }))));

        expect(await coll.deleteBefore('nodeCount', 10)).toBe(1);
        expect((await coll.find({ orderBy: [{ field: 'nodeCount' }] })).nodes.map((c) => c.nodeCount)).toEqual([
          10, 100,
        ]);
      });
    });

    describe('atomic commits', () => {
      it('should apply inserts, replaces and deletes over several collections together', async () => {
        const [a, b] = [await clusters(), await samples()];
        const kept = await a.insert(aCluster());
        const gone = await a.insert(aCluster());
        const sample = aSample('c1', '2026-01-01T00:00:00.000Z');

        await store.commit([
          write.replace(a, { ...kept, nodeCount: 99 }),
          write.delete(a, gone.id, gone.version),
          write.insert(b, sample),
        ]);

        expect(await a.get(kept.id)).toEqual({ ...kept, nodeCount: 99, version: 2 });
        expect(await a.get(gone.id)).toBeNull();
        expect(await b.get(sample.id)).toEqual({ ...sample, version: 1 });
      });

      it('should write nothing when a replace finds another version', async () => {
        const [a, b] = [await clusters(), await samples()];
        const doc = await a.insert(aCluster());
        await a.replace(doc);
        const sample = aSample('c1', '2026-01-01T00:00:00.000Z');

        await expect(
          store.commit([write.insert(b, sample), write.replace(a, { ...doc, nodeCount: 1 })]),
        ).rejects.toThrow(VersionConflictError);

        expect(await b.get(sample.id)).toBeNull();
        expect((await a.get(doc.id))?.version).toBe(2);
      });

      it('should write nothing when an insert clashes, and nothing when a versioned delete misses', async () => {
        const [a, b] = [await clusters(), await samples()];
        const doc = await a.insert(aCluster());
        const sample = aSample('c1', '2026-01-01T00:00:00.000Z');

        await expect(
          store.commit([write.insert(b, sample), write.insert(a, aCluster({ id: doc.id }))]),
        ).rejects.toThrow(DuplicateKeyError);
        await expect(store.commit([write.insert(b, sample), write.delete(a, 'nobody', 1)])).rejects.toThrow(
          VersionConflictError,
        );

        expect(await b.count()).toBe(0);
        expect(await a.get(doc.id)).toEqual(doc);
      });

      it('should refuse a collection that is not open on the store, writing nothing', async () => {
        const b = await samples();
        const sample = aSample('c1', '2026-01-01T00:00:00.000Z');

        await expect(
          store.commit([write.insert(b, sample), { op: 'delete', collection: 'never_opened', id: 'x' }]),
        ).rejects.toThrow(InvalidQueryError);
        expect(await b.count()).toBe(0);
      });

      it('should accept an empty batch and a single write', async () => {
        const a = await clusters();
        await store.commit([]);
        const doc = aCluster();
        await store.commit([write.insert(a, doc)]);
        expect(await a.get(doc.id)).toEqual({ ...doc, version: 1 });
      });
    });

    describe('the store', () => {
      it('should open a collection again, and one without indexes, and commit to both at once', async () => {
        const name = unique('plain');
        const plain = await store.collection<Item>({ name, indexes: [] });
        const again = await store.collection<Item>({ name, indexes: [] });
        const fresh = await items();

        await store.commit([
          write.insert(plain, { id: 'p-1', value: 1 }),
          write.insert(fresh, { id: 'f-1', value: 2 }),
        ]);

        expect(await again.get('p-1')).toEqual({ id: 'p-1', value: 1, version: 1 });
        expect(await fresh.get('f-1')).toEqual({ id: 'f-1', value: 2, version: 1 });
      });

      it('should answer ping', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it.skipIf(!options.durable)('should keep data across close and reopen', async () => {
        const collectionName = unique('clusters');
        const coll = await clusters(collectionName);
        const doc = await coll.replace(await coll.insert(aCluster()));
        await store.close();

        store = await makeStore();
        const reopened = await clusters(collectionName);

        expect(await reopened.get(doc.id)).toEqual(doc);
        expect(ids(await reopened.find({ where: { tenantId: doc.tenantId } }))).toEqual([doc.id]);
        await expect(reopened.insert(aCluster({ id: doc.id }))).rejects.toThrow(DuplicateKeyError);
      });
    });
  });
}
