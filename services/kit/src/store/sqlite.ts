/**
 * The embedded store adapter: one SQLite file per service (better-sqlite3), the default when
 * no MongoDB is configured.
 *
 * Each collection is a table `(id TEXT PRIMARY KEY, version INTEGER, doc TEXT)` holding the
 * caller's fields as JSON, with one expression index on `json_extract(doc, '$.<field>')` per
 * declared index (non-unique ones end with `id`, so that they also serve the id tie-breaker).
 * Queries repeat those expressions exactly, which is what lets SQLite use the indexes.
 *
 * Over 400 lines: the filter-to-SQL translation, the collection and the transaction share the
 * statement cache and the expression texts; split apart, each would need the others' internals.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
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
  VersionConflictError,
  InvalidQueryError,
  type Write,
} from './store.js';

export interface SqliteStoreOptions {
  /** Path of the database file, or `':memory:'`. The file's directory is created when missing. */
  file: string;
  /** How long a statement waits for another connection's write lock, in milliseconds. @default 5000 */
  busyTimeoutMs?: number;
}

/** A SQLite collection: the store interface, plus the query plans behind `find`. */
export interface SqliteCollection<T extends StoredDoc> extends Collection<T> {
  /**
   * The plan SQLite chooses for each statement `find(options)` would run (one line per step,
   * as `EXPLAIN QUERY PLAN` prints it): for tests and for diagnosing a slow query.
   */
  explain(options?: FindOptions<T>): string[];
}

export interface SqliteStore extends Store {
  collection<T extends StoredDoc>(spec: CollectionSpec<T>): Promise<SqliteCollection<T>>;
}

/** Opens (creating when missing) a SQLite store in WAL mode. */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const { file, busyTimeoutMs = 5000 } = options;
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0)
    throw new RangeError('busyTimeoutMs must be a non-negative integer');
  if (file !== ':memory:' && file !== '') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    // WAL lets readers run beside the one writer; NORMAL sync is safe with WAL (a crash can
    // lose the last commits, never corrupt the file).
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  } catch (error) {
    db.close();
    throw error;
  }
  const statements = new StatementCache(db);
  const opened = new Map<string, SqliteCollectionImpl<StoredDoc>>();
  // One transaction for the whole batch; a throw rolls every write of it back.
  const apply = db.transaction((writes: readonly Write[]) => {
    for (const w of writes) {
      const collection = opened.get(w.collection);
      if (!collection) throw new InvalidQueryError(`collection ${w.collection} is not open on this store`);
      if (w.op === 'insert') collection.insertNow(w.doc);
      else if (w.op === 'replace') collection.replaceNow(w.doc);
      else if (!collection.deleteNow(w.id, w.expectedVersion) && w.expectedVersion !== undefined) {
        throw new VersionConflictError(w.collection, w.id, w.expectedVersion);
      }
    }
  });
  return {
    async collection<T extends StoredDoc>(spec: CollectionSpec<T>): Promise<SqliteCollection<T>> {
      const checked = checkSpec(spec);
      createTable(db, checked);
      const collection = new SqliteCollectionImpl<T>(db, statements, checked);
      opened.set(checked.name, collection as unknown as SqliteCollectionImpl<StoredDoc>);
      return collection;
    },
    async commit(writes) {
      if (writes.length > 0) apply.immediate(writes);
    },
    async ping() {
      statements.get('SELECT 1').get();
    },
    async close() {
      if (db.open) db.close();
    },
  };
}

type Param = string | number | null;

interface Row {
  id: string;
  version: number;
  doc: string;
}

/** A WHERE fragment and its parameters. */
interface Clause {
  sql: string;
  params: Param[];
}

/**
 * Prepared statements by SQL text. Shapes are few (one per filter/sort shape), but the cache is
 * bounded all the same.
 */
class StatementCache {
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  static readonly MAX = 500;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  get(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      if (this.#statements.size >= StatementCache.MAX) {
        this.#statements.delete(this.#statements.keys().next().value as string);
      }
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/** The SQL expression of a field; indexes and queries must spell it identically. */
function column(field: string): string {
  if (field === 'id' || field === 'version') return field;
  return `json_extract(doc, '$.${field}')`;
}

/** SQLite binds no booleans; json_extract reads JSON true/false as 1/0, so bind them so. */
function bind(value: Scalar): Param {
  return typeof value === 'boolean' ? Number(value) : value;
}

/**
 * Keeps booleans and numbers apart, as MongoDB does, where json_extract reads true/false as 1/0:
 * a condition on a boolean also needs the JSON value to be one, and one on a number to be none.
 * An extra term beside the indexed comparison, which the index still serves. Null for `id` and
 * `version`, columns that never hold a boolean.
 */
function typeGuard(field: string, value: Scalar): string | null {
  if (column(field) === field || (typeof value !== 'boolean' && typeof value !== 'number')) return null;
  return `json_type(doc, '$.${field}') ${typeof value === 'boolean' ? '' : 'NOT '}IN ('true', 'false')`;
}

function createTable(db: Database.Database, spec: CheckedSpec): void {
  const table = quote(spec.name);
  const statements = [
    `CREATE TABLE IF NOT EXISTS ${table} ` +
      '(id TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL) STRICT',
  ];
  for (const { fields, unique } of spec.indexes) {
    if (fields.length === 1 && fields[0] === 'id') continue; // the primary key
    const columns = fields.map(column);
    if (!unique && !fields.includes('id')) columns.push('id');
    const name = quote(`${spec.name}/${fields.join(',')}${unique ? '/unique' : ''}`);
    statements.push(`CREATE ${unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${name} ON ${table} (${columns.join(', ')})`);
  }
  // IMMEDIATE takes the write lock first (waiting up to busy_timeout), where a deferred
  // transaction that later needs it fails at once when another connection wrote meanwhile.
  db.transaction(() => {
    for (const sql of statements) db.exec(sql);
  }).immediate();
}

const RANGE_SQL = { gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

/**
 * Filter clauses as SQL. A range bound compares only with values of its own type, as in
 * MongoDB: SQLite orders NULL < numbers < text, so a numeric lower bound gets `< ''` (below
 * every text) and a text upper bound gets `>= ''` (above every number); and a number or a
 * boolean matches only its own type (`typeGuard`).
 */
function whereSql(clauses: readonly FieldClause[]): Clause {
  const parts: string[] = [];
  const params: Param[] = [];
  for (const clause of clauses) {
    const { field } = clause;
    const expr = column(field);
    if (clause.eq !== undefined) {
      if (clause.eq === null) parts.push(`${expr} IS NULL`);
      else {
        parts.push(`${expr} = ?`);
        params.push(bind(clause.eq));
        const guard = typeGuard(field, clause.eq);
        if (guard !== null) parts.push(guard);
      }
    }
    if (clause.in !== undefined) {
      const alternatives: string[] = [];
      // Booleans apart from the rest, each list with the type guard of its kind.
      const lists = [
        clause.in.filter((value) => typeof value === 'boolean'),
        clause.in.filter((value) => value !== null && typeof value !== 'boolean'),
      ];
      for (const values of lists) {
        if (values.length === 0) continue;
        // One statement for any list length; json_each yields SQL values as json_extract does.
        const guard = values.map((value) => typeGuard(field, value)).find((g) => g !== null);
        const member = `${expr} IN (SELECT value FROM json_each(?))`;
        alternatives.push(guard === undefined ? member : `(${member} AND ${guard})`);
        params.push(JSON.stringify(values));
      }
      if (clause.in.includes(null)) alternatives.push(`${expr} IS NULL`);
      parts.push(alternatives.length === 0 ? '0' : `(${alternatives.join(' OR ')})`);
    }
    for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
      const bound = clause[op];
      if (bound === undefined) continue;
      parts.push(`${expr} ${RANGE_SQL[op]} ?`);
      params.push(bound);
      if (typeof bound === 'number' && (op === 'gt' || op === 'gte')) parts.push(`${expr} < ''`);
      if (typeof bound === 'string' && (op === 'lt' || op === 'lte')) parts.push(`${expr} >= ''`);
    }
    // Once per field: a numeric range excludes booleans (a text range never reaches them).
    const numeric = RANGE_OPS.map((op) => clause[op]).find((bound) => typeof bound === 'number');
    const guard = numeric === undefined ? null : typeGuard(field, numeric);
    if (guard !== null && !parts.includes(guard)) parts.push(guard);
  }
  return { sql: parts.length === 0 ? '1' : parts.join(' AND '), params };
}

function orderSql(keys: readonly OrderKey[]): string {
  return keys.map(({ field, direction }) => `${column(field)} ${direction === 'asc' ? 'ASC' : 'DESC'}`).join(', ');
}

/** One statement of a page: rows in one contiguous range of the order. */
interface Segment extends Clause {
  /** Sort keys still varying within the range (the ones before are fixed by it). */
  order: readonly OrderKey[];
}

/**
 * The rows after a cursor, as contiguous ranges of the order, first to last: for the deepest
 * key first, the rows equal to the cursor on every key before key i and strictly after it on
 * key i. Each range is an equality prefix plus one comparison, so SQLite serves it by seeking
 * an index, never by scanning from the start. NULLs sort first, so in descending order the
 * NULLs of a key form a range of their own after its values.
 */
function segmentsAfter(keys: readonly OrderKey[], cursor: readonly Scalar[]): Segment[] {
  const segments: Segment[] = [];
  for (let i = keys.length - 1; i >= 0; i--) {
    const prefix: string[] = [];
    const params: Param[] = [];
    for (let j = 0; j < i; j++) {
      const value = cursor[j] ?? null;
      if (value === null) prefix.push(`${column(keys[j]!.field)} IS NULL`);
      else {
        prefix.push(`${column(keys[j]!.field)} = ?`);
        params.push(bind(value));
      }
    }
    const { field, direction } = keys[i]!;
    const expr = column(field);
    const value = cursor[i] ?? null;
    const range = (condition: string, conditionParams: Param[], order: readonly OrderKey[]) =>
      segments.push({ sql: [...prefix, condition].join(' AND '), params: [...params, ...conditionParams], order });
    if (direction === 'asc') {
      if (value === null) range(`${expr} IS NOT NULL`, [], keys.slice(i));
      else range(`${expr} > ?`, [bind(value)], keys.slice(i));
    } else if (value !== null) {
      range(`${expr} < ?`, [bind(value)], keys.slice(i));
      if (i < keys.length - 1) range(`${expr} IS NULL`, [], keys.slice(i + 1)); // the id is never null
    }
  }
  return segments;
}

function isUniqueViolation(error: unknown): boolean {
  return (
    error instanceof Database.SqliteError &&
    (error.code === 'SQLITE_CONSTRAINT_UNIQUE' || error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
  );
}

class SqliteCollectionImpl<T extends StoredDoc> implements SqliteCollection<T> {
  readonly name: string;
  readonly #db: Database.Database;
  readonly #statements: StatementCache;
  readonly #spec: CheckedSpec;
  readonly #table: string;

  constructor(db: Database.Database, statements: StatementCache, spec: CheckedSpec) {
    this.name = spec.name;
    this.#db = db;
    this.#statements = statements;
    this.#spec = spec;
    this.#table = quote(spec.name);
  }

  async get(id: string): Promise<T | null> {
    const key = lookupId(id);
    if (key === null) return null;
    const row = this.#statements.get(`SELECT id, version, doc FROM ${this.#table} WHERE id = ?`).get(key) as
      | Row
      | undefined;
    return row === undefined ? null : this.#fromRow(row);
  }

  async insert(doc: NewDoc<T>): Promise<T> {
    return this.insertNow(doc);
  }

  async replace(doc: T): Promise<T> {
    return this.replaceNow(doc);
  }

  async delete(id: string, expectedVersion?: number): Promise<boolean> {
    return this.deleteNow(id, expectedVersion);
  }

  /** `insert`, synchronously: also a step of `Store.commit`'s transaction. */
  insertNow(doc: NewDoc<T>): T {
    const { id, json } = splitDoc(doc);
    this.#write(() =>
      this.#statements.get(`INSERT INTO ${this.#table} (id, version, doc) VALUES (?, 1, ?)`).run(id, json),
    );
    return this.#fromRow({ id, version: 1, doc: json });
  }

  /** `replace`, synchronously. */
  replaceNow(doc: T): T {
    const { id, json } = splitDoc(doc);
    const expected = checkVersion(doc.version);
    const { changes } = this.#write(() =>
      this.#statements
        .get(`UPDATE ${this.#table} SET doc = ?, version = version + 1 WHERE id = ? AND version = ?`)
        .run(json, id, expected),
    );
    if (changes === 0) throw new VersionConflictError(this.name, id, expected);
    return this.#fromRow({ id, version: expected + 1, doc: json });
  }

  /** `delete`, synchronously. */
  deleteNow(id: string, expectedVersion?: number): boolean {
    checkId(id);
    const { changes } =
      expectedVersion === undefined
        ? this.#statements.get(`DELETE FROM ${this.#table} WHERE id = ?`).run(id)
        : this.#statements
            .get(`DELETE FROM ${this.#table} WHERE id = ? AND version = ?`)
            .run(id, checkVersion(expectedVersion));
    return changes > 0;
  }

  async find(options: FindOptions<T> = {}): Promise<Page<T>> {
    const { segments, size, keys } = this.#plan(options);
    const limit = size + 1; // one more than the page, to know whether another follows
    const rows: Row[] = [];
    // One read transaction, so that the segments see one snapshot of the file.
    this.#db.transaction(() => {
      for (const segment of segments) {
        if (rows.length >= limit) break;
        const statement = this.#statements.get(this.#select(segment));
        rows.push(...(statement.all(...segment.params, limit - rows.length) as Row[]));
      }
    })();
    const nodes = rows.slice(0, size).map((row) => this.#fromRow(row));
    const cursors = nodes.map((node) => encodeCursor(sortValues(node as unknown as Record<string, unknown>, keys)));
    return { nodes, cursors, hasNextPage: rows.length > size, endCursor: cursors.at(-1) ?? null };
  }

  explain(options: FindOptions<T> = {}): string[] {
    return this.#plan(options).segments.flatMap((segment) =>
      (
        this.#db.prepare(`EXPLAIN QUERY PLAN ${this.#select(segment)}`).all(...segment.params, 1) as {
          detail: string;
        }[]
      ).map((step) => step.detail),
    );
  }

  async count(where?: Filter<T>): Promise<number> {
    const filter = whereSql(checkWhere(this.#spec, where));
    const row = this.#statements
      .get(`SELECT count(*) AS n FROM ${this.#table} WHERE ${filter.sql}`)
      .get(...filter.params) as { n: number };
    return row.n;
  }

  async deleteMany(where: Filter<T>): Promise<number> {
    const filter = whereSql(checkWhere(this.#spec, where));
    return this.#statements.get(`DELETE FROM ${this.#table} WHERE ${filter.sql}`).run(...filter.params).changes;
  }

  async keepFirst(where: Filter<T>, orderBy: readonly SortKey<T>[], keep: number): Promise<number> {
    const filter = whereSql(checkWhere(this.#spec, where));
    const keys = checkOrder(this.#spec, orderBy);
    checkKeep(keep);
    // The inner select walks the index in order and skips the kept rows; the rest go by id.
    const sql =
      `DELETE FROM ${this.#table} WHERE id IN (SELECT id FROM ${this.#table} WHERE ${filter.sql} ` +
      `ORDER BY ${orderSql(keys)} LIMIT -1 OFFSET ?)`;
    return this.#statements.get(sql).run(...filter.params, keep).changes;
  }

  async deleteBefore(field: keyof T & string, before: string | number): Promise<number> {
    checkBound(before, 'deleteBefore');
    const filter = whereSql(checkWhere(this.#spec, { [field]: { lt: before } } as Filter<T>));
    return this.#statements.get(`DELETE FROM ${this.#table} WHERE ${filter.sql}`).run(...filter.params).changes;
  }

  /** The statements of one page, in order; each takes its segment's parameters and then a LIMIT. */
  #plan(options: FindOptions<T>): { segments: Segment[]; size: number; keys: OrderKey[] } {
    const filter = whereSql(checkWhere(this.#spec, options.where));
    const keys = checkOrder(this.#spec, options.orderBy);
    const size = checkPageSize(options.first);
    const cursor = checkAfter(options, keys);
    if (cursor === null) return { segments: [{ ...filter, order: keys }], size, keys };
    const segments = segmentsAfter(keys, cursor).map((segment) => ({
      sql: `${filter.sql} AND ${segment.sql}`,
      params: [...filter.params, ...segment.params],
      order: segment.order,
    }));
    return { segments, size, keys };
  }

  #select(segment: Segment): string {
    return (
      `SELECT id, version, doc FROM ${this.#table} WHERE ${segment.sql} ` +
      `ORDER BY ${orderSql(segment.order)} LIMIT ?`
    );
  }

  #write<R>(write: () => R): R {
    try {
      return write();
    } catch (error) {
      if (isUniqueViolation(error)) throw new DuplicateKeyError(this.name, { cause: error });
      throw error;
    }
  }

  #fromRow(row: Row): T {
    return { ...(JSON.parse(row.doc) as object), id: row.id, version: row.version } as T;
  }
}
