import type { Collection, StoredDoc } from './store.js';

/** Ids read in one query at most (well under SQLite's 32,766 parameters, and a modest `$in`). */
const MAX_BATCH = 500;

interface Waiting<T> {
  resolve(doc: T | null): void;
  reject(error: unknown): void;
}

/**
 * `collection.get` for gets that come together: those asked within one turn of the event loop
 * are read in one query (`id in [...]`), a single one by `get` itself. What a subgraph's
 * `_entities` asks (one `__resolveReference` per representation, all at once): one round trip to
 * MongoDB instead of one per entity, one statement for SQLite. Nothing is cached: each get reads
 * the document as it is when its turn's query runs (a DataLoader without memory), so it can be
 * shared by every request of the process; the caller scopes what it gets, as after `get`.
 */
export function batchedGet<T extends StoredDoc>(collection: Collection<T>): (id: string) => Promise<T | null> {
  let waiting: Map<string, Waiting<T>[]> | undefined;

  async function read(ids: string[], batch: Map<string, Waiting<T>[]>): Promise<void> {
    try {
      const found = new Map<string, T>();
      if (ids.length === 1) {
        const doc = await collection.get(ids[0]!);
        if (doc) found.set(doc.id, doc);
      } else {
        const page = await collection.find({ where: { id: { in: ids } } as never, first: ids.length });
        for (const doc of page.nodes) found.set(doc.id, doc);
      }
      for (const id of ids) for (const w of batch.get(id)!) w.resolve(found.get(id) ?? null);
    } catch (error) {
      for (const id of ids) for (const w of batch.get(id)!) w.reject(error);
    }
  }

  function flush(): void {
    const batch = waiting!;
    waiting = undefined;
    const ids = [...batch.keys()];
    for (let at = 0; at < ids.length; at += MAX_BATCH) void read(ids.slice(at, at + MAX_BATCH), batch);
  }

  return (id) => {
    // An empty id finds none, as `get` says; not worth a place in a query.
    if (id === '') return Promise.resolve(null);
    if (!waiting) {
      waiting = new Map();
      setImmediate(flush);
    }
    const batch = waiting;
    return new Promise<T | null>((resolve, reject) => {
      const list = batch.get(id);
      if (list) list.push({ resolve, reject });
      else batch.set(id, [{ resolve, reject }]);
    });
  };
}
