import { Batcher } from '../batch.js';
import type { Collection, StoredDoc } from './store.js';

/** Gets read in one query at most (well under SQLite's 32,766 parameters, and a modest `$in`). */
const MAX_BATCH = 500;

/**
 * `collection.get` for gets that come together: those asked within one turn of the event loop
 * are read in one query (`id in [...]`), a single one by `get` itself. What a subgraph's
 * `_entities` asks (one `__resolveReference` per representation, all at once): one round trip to
 * MongoDB instead of one per entity, one statement for SQLite. Nothing is cached: each get reads
 * the document as it is when its turn's query runs (a DataLoader without memory), so it can be
 * shared by every request of the process; the caller scopes what it gets, as after `get`.
 */
export function batchedGet<T extends StoredDoc>(collection: Collection<T>): (id: string) => Promise<T | null> {
  const batches = new Batcher({ windowMs: 'turn', maxSize: MAX_BATCH });
  const read = async (ids: readonly string[]): Promise<(T | null)[]> => {
    const distinct = [...new Set(ids)];
    if (distinct.length === 1) {
      const doc = await collection.get(distinct[0]!);
      return ids.map(() => doc);
    }
    const page = await collection.find({ where: { id: { in: distinct } } as never, first: distinct.length });
    const found = new Map(page.nodes.map((doc) => [doc.id, doc]));
    return ids.map((id) => found.get(id) ?? null);
  };
  // An empty id finds none, as `get` says; not worth a place in a query.
  return (id) => (id === '' ? Promise.resolve(null) : batches.call('get', id, read));
}
