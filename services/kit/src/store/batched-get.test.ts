import { describe, expect, it } from 'vitest';
import { batchedGet } from './batched-get.js';
import { createSqliteStore } from './sqlite.js';
import type { Collection, StoredDoc } from './store.js';

interface Thing extends StoredDoc {
  n: number;
}

/** A collection counting its reads, over an in-memory SQLite store. */
async function things(count: number) {
  const store = createSqliteStore({ file: ':memory:' });
  const inner = await store.collection<Thing>({ name: 'things', indexes: [] });
  for (let n = 0; n < count; n++) await inner.insert({ id: `t${n}`, n });
  const reads = { get: 0, find: 0 };
  // batchedGet reads with get and find only.
  const counted = {
    get: (id: string) => {
      reads.get++;
      return inner.get(id);
    },
    find: (options: Parameters<Collection<Thing>['find']>[0]) => {
      reads.find++;
      return inner.find(options);
    },
  } as unknown as Collection<Thing>;
  return { store, inner, collection: counted, reads };
}

describe('batchedGet', () => {
  it('should read the gets of one turn in one query, each getting its own document or null', async () => {
    const { store, collection, reads } = await things(600);
    const get = batchedGet(collection);
    const ids = ['t3', 't1', 'missing', 't3', 't2', ''];
    const docs = await Promise.all(ids.map(get));
    expect(docs.map((d) => d?.n ?? null)).toEqual([3, 1, null, 3, 2, null]);
    expect(reads).toEqual({ get: 0, find: 1 });

    // A turn later, a lone get is a get; more than 500 ids at once, a query per 500.
    expect((await get('t5'))?.n).toBe(5);
    expect(reads).toEqual({ get: 1, find: 1 });
    const many = await Promise.all(Array.from({ length: 600 }, (_, n) => get(`t${n}`)));
    expect(many.every((d, n) => d?.n === n)).toBe(true);
    expect(reads).toEqual({ get: 1, find: 3 });
    await store.close();
  });

  it('should read each document as it is when its turn comes, and hand a failure to every get of the query', async () => {
    const { store, inner, collection } = await things(2);
    const get = batchedGet(collection);
    const stored = (await inner.get('t0'))!;
    const before = get('t0');
    await inner.replace({ ...stored, n: 42 });
    expect((await before)?.n).toBe(42);
    expect((await get('t0'))?.n).toBe(42);

    const failing = { find: () => Promise.reject(new Error('store away')) } as unknown as Collection<Thing>;
    const broken = batchedGet(failing);
    const results = await Promise.allSettled([broken('t0'), broken('t1')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await store.close();
  });
});
