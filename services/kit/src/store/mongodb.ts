/**
 * The production store adapter: MongoDB through the official driver.
 *
 * A document is stored as `{ _id: id, ...fields, version }`. Every declared index is created
 * when the collection is opened; non-unique ones end with `_id`, so that they also serve the
 * id tie-breaker of every sort. Updates are compare-and-set on `{ _id, version }`.
 */
import {
  type ClientSession,
  type Collection as MongoCollection,
  type Document,
  type IndexDescription,
  MongoClient,
  type MongoClientOptions,
  MongoError,
} from 'mongodb';
import {
  checkAfter,
  checkBound,
  checkId,
  lookupId,
  checkKeep,
  checkOrder,
  checkPageSize,
  checkSpec,
  checkVersion,
  checkWhere,
  type CheckedSpec,
  encodeCursor,
  type FieldClause,
  type OrderKey,
  RANGE_OPS,
  sortValues,
  splitDoc,
} from './query.js';
import {
  type Collection,
  type CollectionSpec,
  DuplicateKeyError,
  type Filter,
  type FindOptions,
  type NewDoc,
  type Page,
  type Scalar,
  type SortKey,
  type Store,
  type StoredDoc,
  StoreError,
  VersionConflictError,
  InvalidQueryError,
  type Write,
} from './store.js';

export interface MongoStoreOptions {
  /** A MongoDB connection string, such as `mongodb://localhost:27017`. */
  uri: string;
  /** The database holding the service's collections. */
  database: string;
  /** Passed to `MongoClient` (pool size, timeouts, TLS). @default { appName: 'fleetgraph' } */
  clientOptions?: MongoClientOptions;
}

/** MongoDB 5.0: the first to accept field names with dots in a replacement. */
export const MIN_WIRE_VERSION = 13;

/**
 * Checks the answer of `hello`: the store needs a replica set or a sharded cluster (`commit`
 * runs transactions), of MongoDB 5.0 or later. @throws StoreError saying what to change.
 */
export function checkDeployment(hello: Document): void {
  if (typeof hello.setName !== 'string' && hello.msg !== 'isdbgrid') {
    throw new StoreError(
      'MongoDB is a standalone server, but the store needs a replica set or a sharded cluster ' +
        '(its commits are multi-document transactions). For one local node, start mongod with ' +
        '`--replSet rs0`, run `rs.initiate()` once in mongosh, and connect with `?directConnection=true`.',
    );
  }
  const wire = hello.maxWireVersion;
  if (typeof wire !== 'number' || wire < MIN_WIRE_VERSION) {
    throw new StoreError(
      `MongoDB is too old (wire version ${String(wire)}): the store needs MongoDB 5.0 or later ` +
        `(wire version ${MIN_WIRE_VERSION}).`,
    );
  }
}

/**
 * Connects to MongoDB (failing when no server is selected in time) and returns a store over one
 * database. @throws StoreError when the deployment is a standalone server or older than 5.0.
 */
export async function createMongoStore(options: MongoStoreOptions): Promise<Store> {
  const client = new MongoClient(options.uri, { appName: 'fleetgraph', ...options.clientOptions });
  await client.connect();
  try {
    checkDeployment(await client.db('admin').command({ hello: 1 }));
  } catch (error) {
    await client.close();
    throw error;
  }
  const db = client.db(options.database);
  const opened = new Map<string, MongoCollectionImpl<StoredDoc>>();
  const applyAll = async (writes: readonly Write[], session?: ClientSession) => {
    for (const w of writes) {
      const collection = opened.get(w.collection)!;
      if (w.op === 'insert') await collection.insertIn(w.doc, session);
      else if (w.op === 'replace') await collection.replaceIn(w.doc, session);
      else if (!(await collection.deleteIn(w.id, w.expectedVersion, session)) && w.expectedVersion !== undefined) {
        throw new VersionConflictError(w.collection, w.id, w.expectedVersion);
      }
    }
  };
  return {
    async collection<T extends StoredDoc>(spec: CollectionSpec<T>): Promise<Collection<T>> {
      const checked = checkSpec(spec);
      // Created here, not by a first insert inside a transaction (which a sharded cluster
      // refuses, and where concurrent first commits clash with WriteConflict).
      await db.createCollection(checked.name).catch((error: unknown) => {
        if (!(error instanceof MongoError && error.code === NAMESPACE_EXISTS)) throw error;
      });
      const collection = db.collection<RawDoc>(checked.name);
      const indexes = indexDescriptions(checked);
      if (indexes.length > 0) await collection.createIndexes(indexes);
      const impl = new MongoCollectionImpl<T>(collection, checked);
      opened.set(checked.name, impl as unknown as MongoCollectionImpl<StoredDoc>);
      return impl;
    },
    async commit(writes) {
      for (const w of writes)
        if (!opened.has(w.collection))
          throw new InvalidQueryError(`collection ${w.collection} is not open on this store`);
      if (writes.length === 0) return;
      // One write is atomic by itself, and needs no replica set.
      if (writes.length === 1) return applyAll(writes);
      const session = client.startSession();
      try {
        // Retries the whole batch on a transient transaction error; any other error aborts it
        // (nothing written) and is thrown here.
        await session.withTransaction(() => applyAll(writes, session), {
          readConcern: { level: 'snapshot' },
          writeConcern: { w: 'majority' },
        });
      } finally {
        await session.endSession();
      }
    },
    async ping() {
      await db.command({ ping: 1 });
    },
    async close() {
      await client.close();
    },
  };
}

/** The server's error code for creating a collection that exists. */
const NAMESPACE_EXISTS = 48;

/** A document as MongoDB holds it. */
interface RawDoc extends Document {
  _id: string;
  version: number;
}

function mongoField(field: string): string {
  return field === 'id' ? '_id' : field;
}

function indexDescriptions(spec: CheckedSpec): IndexDescription[] {
  return spec.indexes
    .filter(({ fields }) => !(fields.length === 1 && fields[0] === 'id')) // `_id` is always indexed
    .map(({ fields, unique }) => {
      const key: Record<string, 1> = {};
      for (const field of fields) key[mongoField(field)] = 1;
      if (!unique) key._id = 1;
      return unique ? { key, unique: true } : { key };
    });
}

function mongoWhere(clauses: readonly FieldClause[]): Document {
  const filter: Document = {};
  for (const clause of clauses) {
    const condition: Document = {};
    // `{ $eq: null }` and `{ $in: [null] }` also match a missing field, as IS NULL does in SQLite.
    if (clause.eq !== undefined) condition.$eq = clause.eq;
    if (clause.in !== undefined) condition.$in = clause.in;
    // Range operators compare only values of the bound's type (MongoDB's type bracketing).
    for (const op of RANGE_OPS) if (clause[op] !== undefined) condition[`$${op}`] = clause[op];
    if (Object.keys(condition).length > 0) filter[mongoField(clause.field)] = condition;
  }
  return filter;
}

function mongoSort(keys: readonly OrderKey[]): [string, 1 | -1][] {
  return keys.map(({ field, direction }) => [mongoField(field), direction === 'asc' ? 1 : -1]);
}

/**
 * The documents after a cursor (or from it, with `inclusive`): one branch per key i, equal to
 * the cursor on every key before i and strictly after it on key i. Missing and null sort
 * first, so in descending order they come after every value of their key.
 */
function mongoAfter(keys: readonly OrderKey[], cursor: readonly Scalar[], inclusive: boolean): Document {
  const branches: Document[] = [];
  keys.forEach(({ field, direction }, i) => {
    const prefix: Document = {};
    for (let j = 0; j < i; j++) prefix[mongoField(keys[j]!.field)] = cursor[j] ?? null;
    const key = mongoField(field);
    const value = cursor[i] ?? null;
    const orEqual = inclusive && i === keys.length - 1 ? 'e' : '';
    if (direction === 'asc') {
      branches.push({ ...prefix, [key]: value === null ? { $ne: null } : { [`$gt${orEqual}`]: value } });
    } else if (value !== null) {
      branches.push({ ...prefix, [key]: { [`$lt${orEqual}`]: value } });
      if (i < keys.length - 1) branches.push({ ...prefix, [key]: null }); // the id is never null
    }
  });
  return { $or: branches };
}

function both(a: Document, b: Document): Document {
  return Object.keys(a).length === 0 ? b : { $and: [a, b] };
}

function isDuplicateKey(error: unknown): boolean {
  return error instanceof MongoError && (error.code === 11000 || error.code === 11001);
}

class MongoCollectionImpl<T extends StoredDoc> implements Collection<T> {
  readonly name: string;
  readonly #collection: MongoCollection<RawDoc>;
  readonly #spec: CheckedSpec;

  constructor(collection: MongoCollection<RawDoc>, spec: CheckedSpec) {
    this.name = spec.name;
    this.#collection = collection;
    this.#spec = spec;
  }

  async get(id: string): Promise<T | null> {
    const key = lookupId(id);
    if (key === null) return null;
    const raw = await this.#collection.findOne({ _id: key });
    return raw === null ? null : fromRaw<T>(raw);
  }

  insert(doc: NewDoc<T>): Promise<T> {
    return this.insertIn(doc);
  }

  replace(doc: T): Promise<T> {
    return this.replaceIn(doc);
  }

  delete(id: string, expectedVersion?: number): Promise<boolean> {
    return this.deleteIn(id, expectedVersion);
  }

  /** `insert`, within a session's transaction when one is given (`Store.commit`). */
  async insertIn(doc: NewDoc<T>, session?: ClientSession): Promise<T> {
    const { id, json } = splitDoc(doc);
    const fields = JSON.parse(json) as Document;
    await this.#write(() => this.#collection.insertOne({ ...fields, _id: id, version: 1 }, { session }));
    return { ...fields, id, version: 1 } as T;
  }

  /** `replace`, within a session's transaction when one is given. */
  async replaceIn(doc: T, session?: ClientSession): Promise<T> {
    const { id, json } = splitDoc(doc);
    const expected = checkVersion(doc.version);
    const fields = JSON.parse(json) as Document;
    const before = await this.#write(() =>
      this.#collection.findOneAndReplace(
        { _id: id, version: expected },
        { ...fields, version: expected + 1 },
        { projection: { _id: 1 }, session },
      ),
    );
    if (before === null) throw new VersionConflictError(this.name, id, expected);
    return { ...fields, id, version: expected + 1 } as T;
  }

  /** `delete`, within a session's transaction when one is given. */
  async deleteIn(id: string, expectedVersion?: number, session?: ClientSession): Promise<boolean> {
    const filter =
      expectedVersion === undefined
        ? { _id: checkId(id) }
        : { _id: checkId(id), version: checkVersion(expectedVersion) };
    const { deletedCount } = await this.#collection.deleteOne(filter, { session });
    return deletedCount > 0;
  }

  async find(options: FindOptions<T> = {}): Promise<Page<T>> {
    const where = mongoWhere(checkWhere(this.#spec, options.where));
    const keys = checkOrder(this.#spec, options.orderBy);
    const size = checkPageSize(options.first);
    const cursor = checkAfter(options, keys);
    const filter = cursor === null ? where : both(where, mongoAfter(keys, cursor, false));
    // One more than the page, to know whether another follows (and never 0, which means no limit).
    const raws = await this.#collection.find(filter, { sort: mongoSort(keys), limit: size + 1 }).toArray();
    const nodes = raws.slice(0, size).map((raw) => fromRaw<T>(raw));
    const cursors = nodes.map((node) => encodeCursor(sortValues(node as unknown as Record<string, unknown>, keys)));
    return { nodes, cursors, hasNextPage: raws.length > size, endCursor: cursors.at(-1) ?? null };
  }

  async count(where?: Filter<T>): Promise<number> {
    return this.#collection.countDocuments(mongoWhere(checkWhere(this.#spec, where)));
  }

  async deleteMany(where: Filter<T>): Promise<number> {
    const { deletedCount } = await this.#collection.deleteMany(mongoWhere(checkWhere(this.#spec, where)));
    return deletedCount;
  }

  async keepFirst(where: Filter<T>, orderBy: readonly SortKey<T>[], keep: number): Promise<number> {
    const filter = mongoWhere(checkWhere(this.#spec, where));
    const keys = checkOrder(this.#spec, orderBy);
    checkKeep(keep);
    // The first document beyond the kept ones; it and everything after it in the order go.
    const boundary = await this.#collection.findOne(filter, {
      sort: mongoSort(keys),
      skip: keep,
      projection: Object.fromEntries(keys.map(({ field }) => [mongoField(field), 1])),
    });
    if (boundary === null) return 0;
    const values = sortValues(fromRaw<T>(boundary) as unknown as Record<string, unknown>, keys);
    const { deletedCount } = await this.#collection.deleteMany(both(filter, mongoAfter(keys, values, true)));
    return deletedCount;
  }

  async deleteBefore(field: keyof T & string, before: string | number): Promise<number> {
    checkBound(before, 'deleteBefore');
    const filter = mongoWhere(checkWhere(this.#spec, { [field]: { lt: before } } as Filter<T>));
    const { deletedCount } = await this.#collection.deleteMany(filter);
    return deletedCount;
  }

  async #write<R>(write: () => Promise<R>): Promise<R> {
    try {
      return await write();
    } catch (error) {
      if (isDuplicateKey(error)) throw new DuplicateKeyError(this.name, { cause: error });
      throw error;
    }
  }
}

function fromRaw<T>(raw: RawDoc): T {
  const { _id, ...fields } = raw;
  return { ...fields, id: _id } as T;
}
