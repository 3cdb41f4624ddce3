/**
 * The one storage interface every service uses (ARCHITECTURE.md, Storage).
 *
 * Documents are plain JSON objects with a string `id` and a `version` that the store
 * owns: it starts at 1 on insert and increments on every successful update, which is a
 * compare-and-set on the version the caller read. Filters and sorts name only fields
 * declared as indexed in the collection's spec, so that both adapters can serve them
 * from an index. Nothing in a service names an adapter: `createStore` picks one.
 */

/** A stored document: the caller's fields plus the store-owned `id` and `version`. */
export interface StoredDoc {
  id: string;
  version: number;
}

/** A JSON value a filter may compare against. */
export type Scalar = string | number | boolean | null;

/** A range or membership condition on one field. */
export interface FieldCondition {
  eq?: Scalar;
  in?: readonly Scalar[];
  gt?: string | number;
  gte?: string | number;
  lt?: string | number;
  lte?: string | number;
}

/**
 * Equality (`{ tenantId: 't1' }`), membership (`{ projectId: { in: [...] } }`) and range
 * (`{ time: { gte: '2026-...' } }`) conditions on indexed fields (and `id`), all of which must hold.
 *
 * `null` matches a null or missing field. A range bound compares only with values of its own
 * type: `{ gt: 9 }` matches numbers above 9 and no string. Booleans are not numbers: `1` and
 * `{ gt: 0 }` never match `true`, nor `true` a 1. An `undefined` value is rejected
 * with InvalidQueryError rather than ignored, so that `{ tenantId: undefined }` cannot match
 * every tenant.
 */
export type Filter<T> = { [K in keyof T & string]?: Scalar | FieldCondition };

export interface SortKey<T> {
  field: keyof T & string;
  direction?: 'asc' | 'desc';
}

export interface FindOptions<T> {
  where?: Filter<T>;
  /**
   * Sort keys. `id` is always appended as the final tie-breaker, in the direction of the last
   * key (so `[{ field: 'time', direction: 'desc' }]` means time, then id, both descending).
   * Null and missing values sort first, then numbers, then strings.
   * @default [{ field: 'id' }]
   */
  orderBy?: readonly SortKey<T>[];
  /** Page size. @default 50 */
  first?: number;
  /** A cursor (`endCursor`, or one of `cursors`) returned by a previous `find` with the same filter and order. */
  after?: string | null;
}

export interface Page<T> {
  nodes: T[];
  /** The cursor of each node, in order: `after` one of them resumes right after that node. */
  cursors: string[];
  hasNextPage: boolean;
  /** Opaque cursor of the last node (the last of `cursors`), or null when the page is empty. */
  endCursor: string | null;
}

/**
 * An index of a collection: one or more top-level fields, optionally unique. Indexed fields hold
 * scalars (string, number, boolean, null); a field used to sort holds one type, or null.
 */
export interface IndexSpec<T> {
  fields: readonly (keyof T & string)[];
  /**
   * Rejects a second document with the same values. Give every document the fields of a
   * unique index, and no null in them: MongoDB counts a missing field as null and two nulls as
   * equal (two documents without the field, or with null in it, clash), SQLite lets any number
   * of them through.
   * @default false
   */
  unique?: boolean;
}

export interface CollectionSpec<T> {
  /** Collection (table) name, unique within the service's store. */
  name: string;
  /** Every field used in a filter or a sort must be covered by an index. */
  indexes: readonly IndexSpec<T>[];
}

/**
 * The document a caller passes to `insert`: everything but the store-owned `version`. It is
 * stored as JSON (`JSON.stringify`: a Date becomes its ISO string, undefined fields vanish), and
 * may not have an `_id` field nor a top-level field whose name starts with `$` (InvalidQueryError).
 */
export type NewDoc<T extends StoredDoc> = Omit<T, 'version'>;

export interface Collection<T extends StoredDoc> {
  readonly name: string;
  /** The document, or null when there is none (an empty id finds none). */
  get(id: string): Promise<T | null>;
  /** Inserts a new document with `version: 1`. @throws DuplicateKeyError on an id or unique-index clash. */
  insert(doc: NewDoc<T>): Promise<T>;
  /**
   * Replaces the document if its stored version is still `expectedVersion`, and returns it
   * with the version incremented. @throws VersionConflictError when it changed or is gone,
   * DuplicateKeyError on a unique-index clash.
   */
  replace(doc: T): Promise<T>;
  /** Deletes the document; with `expectedVersion`, only if it is unchanged. Returns whether one was deleted. */
  delete(id: string, expectedVersion?: number): Promise<boolean>;
  find(options?: FindOptions<T>): Promise<Page<T>>;
  count(where?: Filter<T>): Promise<number>;
  /** Deletes every document matching the filter; returns how many. */
  deleteMany(where: Filter<T>): Promise<number>;
  /**
   * Retention by count: among the documents matching `where` (typically one key, such as a
   * cluster id), keeps the `keep` first in `orderBy` order and deletes the rest. Returns how many were deleted.
   */
  keepFirst(where: Filter<T>, orderBy: readonly SortKey<T>[], keep: number): Promise<number>;
  /** Retention by age: deletes documents whose `field` is below `before`. Returns how many. */
  deleteBefore(field: keyof T & string, before: string | number): Promise<number>;
}

/**
 * One write of an atomic batch (`Store.commit`), made with `write.insert`, `write.replace` or
 * `write.delete` on an opened collection of the same store.
 */
export type Write =
  | { readonly op: 'insert'; readonly collection: string; readonly doc: NewDoc<StoredDoc> }
  | { readonly op: 'replace'; readonly collection: string; readonly doc: StoredDoc }
  | { readonly op: 'delete'; readonly collection: string; readonly id: string; readonly expectedVersion?: number };

/** Builders of `Write`s, typed by their collection. */
export const write = {
  /** Inserts a new document (`version: 1`); a clash fails the whole commit with DuplicateKeyError. */
  insert<T extends StoredDoc>(collection: Collection<T>, doc: NewDoc<T>): Write {
    return { op: 'insert', collection: collection.name, doc: doc as NewDoc<StoredDoc> };
  },
  /** Replaces a document at `doc.version`; another version fails the whole commit with VersionConflictError. */
  replace<T extends StoredDoc>(collection: Collection<T>, doc: T): Write {
    return { op: 'replace', collection: collection.name, doc };
  },
  /**
   * Deletes a document. With `expectedVersion`, a document at another version (or gone) fails
   * the whole commit with VersionConflictError; without, a missing document is no failure.
   */
  delete<T extends StoredDoc>(collection: Collection<T>, id: string, expectedVersion?: number): Write {
    return expectedVersion === undefined
      ? { op: 'delete', collection: collection.name, id }
      : { op: 'delete', collection: collection.name, id, expectedVersion };
  },
};

export interface Store {
  /** Opens (creating when missing) a collection and its indexes. */
  collection<T extends StoredDoc>(spec: CollectionSpec<T>): Promise<Collection<T>>;
  /**
   * Applies the writes, in order, all or none: a state change and the messages that announce
   * it (the outbox, bus/outbox.ts) are stored together. Every collection named must have been
   * opened on this store. @throws VersionConflictError, DuplicateKeyError (nothing written),
   * InvalidQueryError for a collection that is not open.
   *
   * MongoDB runs a batch of more than one write as a multi-document transaction, which needs a
   * replica set (or a sharded cluster), as production deployments have: `createMongoStore`
   * refuses a standalone server.
   */
  commit(writes: readonly Write[]): Promise<void>;
  /** Throws when the backing database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class StoreError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** An insert or update clashed with an existing id or a unique index. */
export class DuplicateKeyError extends StoreError {
  constructor(
    readonly collection: string,
    options?: ErrorOptions,
  ) {
    super(`duplicate key in ${collection}`, options);
    this.name = 'DuplicateKeyError';
  }
}

/** A compare-and-set update found another version than the one the caller read. */
export class VersionConflictError extends StoreError {
  constructor(
    readonly collection: string,
    readonly id: string,
    readonly expectedVersion: number,
    options?: ErrorOptions,
  ) {
    super(`${collection}/${id} is no longer at version ${expectedVersion}`, options);
    this.name = 'VersionConflictError';
  }
}

/**
 * A filter or sort names a field that no index of the collection covers, or an argument is
 * malformed: a filter value, a cursor, a page size, an id, a version, a collection spec.
 */
export class InvalidQueryError extends StoreError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidQueryError';
  }
}
