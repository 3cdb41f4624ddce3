/**
 * What both adapters share: checking collection specs, filters, sorts, page sizes and
 * cursors against the store's rules, before either one turns them into SQL or a MongoDB
 * query. Internal to the store; not exported from the package.
 */
import {
  type CollectionSpec,
  type FieldCondition,
  type Filter,
  type FindOptions,
  InvalidQueryError,
  type Scalar,
  type SortKey,
} from './store.js';

/** Collection and field names end up in SQL identifiers and JSON paths, so they are kept plain. */
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

export const DEFAULT_PAGE_SIZE = 50;

/** One sort key after normalisation: `id` is always the last one. */
export interface OrderKey {
  field: string;
  direction: 'asc' | 'desc';
}

/** One field's conditions after normalisation; an empty object places no condition. */
export interface FieldClause {
  field: string;
  eq?: Scalar;
  in?: Scalar[];
  gt?: string | number;
  gte?: string | number;
  lt?: string | number;
  lte?: string | number;
}

export type RangeOp = 'gt' | 'gte' | 'lt' | 'lte';
export const RANGE_OPS: readonly RangeOp[] = ['gt', 'gte', 'lt', 'lte'];
const CONDITION_KEYS = new Set<string>(['eq', 'in', ...RANGE_OPS]);

/** The parts of a collection spec the adapters need, checked once when the collection is opened. */
export interface CheckedSpec {
  name: string;
  /** Indexes with their fields, `id` included where declared. */
  indexes: { fields: string[]; unique: boolean }[];
  /** Fields a filter or sort may name: every field of every index, and `id`. */
  queryable: ReadonlySet<string>;
}

export function checkSpec<T>(spec: CollectionSpec<T>): CheckedSpec {
  if (!NAME.test(spec.name) || spec.name.toLowerCase().startsWith('sqlite_')) {
    throw new InvalidQueryError(`collection name ${JSON.stringify(spec.name)} must match ${NAME} and not be reserved`);
  }
  const queryable = new Set<string>(['id']);
  const indexes = spec.indexes.map((index) => {
    const fields = [...index.fields];
    if (fields.length === 0) throw new InvalidQueryError(`an index of ${spec.name} has no fields`);
    for (const field of fields) {
      if (!NAME.test(field))
        throw new InvalidQueryError(`index field ${JSON.stringify(field)} of ${spec.name} must match ${NAME}`);
      queryable.add(field);
    }
    if (new Set(fields).size !== fields.length) throw new InvalidQueryError(`an index of ${spec.name} repeats a field`);
    return { fields, unique: index.unique ?? false };
  });
  return { name: spec.name, indexes, queryable };
}

function checkField(spec: CheckedSpec, field: unknown, use: string): string {
  if (typeof field !== 'string' || !spec.queryable.has(field)) {
    throw new InvalidQueryError(`${use} on ${String(field)}: no index of ${spec.name} covers it`);
  }
  return field;
}

function isScalar(value: unknown): value is Scalar {
  return (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isFinite(value))
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function checkScalar(value: unknown, what: string): Scalar {
  if (!isScalar(value)) throw new InvalidQueryError(`${what} must be a string, a finite number, a boolean or null`);
  return value;
}

export function checkBound(value: unknown, what: string): string | number {
  if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return value;
  throw new InvalidQueryError(`${what} must be a string or a finite number`);
}

/**
 * Checks a filter and returns one clause per field. An `undefined` value is rejected rather
 * than ignored: `{ tenantId: undefined }` silently matching every tenant is the bug it prevents.
 */
export function checkWhere<T>(spec: CheckedSpec, where: Filter<T> | undefined): FieldClause[] {
  if (where === undefined) return [];
  if (!isPlainObject(where)) throw new InvalidQueryError('a filter must be a plain object');
  return Object.entries(where).map(([field, value]) => {
    checkField(spec, field, 'filter');
    if (value === undefined)
      throw new InvalidQueryError(`filter on ${field} is undefined: omit the field, or use null`);
    if (!isPlainObject(value)) return { field, eq: checkScalar(value, `filter on ${field}`) };
    const clause: FieldClause = { field };
    for (const [op, operand] of Object.entries(value)) {
      if (!CONDITION_KEYS.has(op)) throw new InvalidQueryError(`filter on ${field}: unknown condition ${op}`);
      if (operand === undefined) throw new InvalidQueryError(`filter on ${field}: ${op} is undefined`);
    }
    const condition = value as FieldCondition;
    if (condition.eq !== undefined) clause.eq = checkScalar(condition.eq, `filter on ${field}: eq`);
    if (condition.in !== undefined) {
      if (!Array.isArray(condition.in)) throw new InvalidQueryError(`filter on ${field}: in must be an array`);
      clause.in = condition.in.map((item) => checkScalar(item, `filter on ${field}: each of in`));
    }
    for (const op of RANGE_OPS) {
      if (condition[op] !== undefined) clause[op] = checkBound(condition[op], `filter on ${field}: ${op}`);
    }
    return clause;
  });
}

/**
 * Normalises a sort: keys after `id` are dropped (`id` is unique), and `id` is appended when
 * missing, in the direction of the last key, so that an index on the sort fields (the
 * adapters end every non-unique index with the id) serves the whole order in one scan.
 */
export function checkOrder<T>(spec: CheckedSpec, orderBy: readonly SortKey<T>[] | undefined): OrderKey[] {
  const keys: OrderKey[] = [];
  for (const key of orderBy ?? []) {
    const field = checkField(spec, key?.field, 'sort');
    const direction = key.direction ?? 'asc';
    if (direction !== 'asc' && direction !== 'desc')
      throw new InvalidQueryError(`sort on ${field}: direction must be asc or desc`);
    if (keys.some((k) => k.field === field)) throw new InvalidQueryError(`sort names ${field} twice`);
    keys.push({ field, direction });
    if (field === 'id') return keys;
  }
  keys.push({ field: 'id', direction: keys.at(-1)?.direction ?? 'asc' });
  return keys;
}

export function checkPageSize(first: number | undefined): number {
  const size = first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isSafeInteger(size) || size < 0)
    throw new InvalidQueryError(`page size must be a non-negative integer, not ${first}`);
  return size;
}

export function checkKeep(keep: number): number {
  if (!Number.isSafeInteger(keep) || keep < 0)
    throw new InvalidQueryError(`keep must be a non-negative integer, not ${keep}`);
  return keep;
}

/**
 * The id of a lookup (`get`), or null when it is a string no document can have (the empty one):
 * a client's empty id finds nothing, as an unknown one does, rather than failing.
 */
export function lookupId(id: unknown): string | null {
  return id === '' ? null : checkId(id);
}

export function checkId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) throw new InvalidQueryError('an id must be a non-empty string');
  return id;
}

export function checkVersion(version: unknown): number {
  if (!Number.isSafeInteger(version) || (version as number) < 1) {
    throw new InvalidQueryError('a replace needs the version that was read (a positive integer)');
  }
  return version as number;
}

/**
 * Splits a document into its id and the caller's fields, as JSON (so that both adapters store
 * exactly what `JSON.stringify` keeps: a Date becomes its ISO string, undefined fields vanish).
 * A top-level field named `$...` is refused: MongoDB would insert it but never replace it.
 */
export function splitDoc(doc: object): { id: string; json: string } {
  const { id, version: _version, ...fields } = doc as { id?: unknown; version?: unknown };
  if ('_id' in fields) throw new InvalidQueryError('a document may not have an _id field');
  const dollar = Object.keys(fields).find((key) => key.startsWith('$'));
  if (dollar !== undefined)
    throw new InvalidQueryError(`a document may not have a top-level field starting with $ (${dollar})`);
  return { id: checkId(id), json: JSON.stringify(fields) };
}

/** The sort values of a document, in key order, as a cursor holds them (a missing field is null). */
export function sortValues(doc: Record<string, unknown>, keys: readonly OrderKey[]): Scalar[] {
  return keys.map(({ field }) => {
    const value = doc[field] ?? null;
    if (!isScalar(value))
      throw new InvalidQueryError(`cannot page by ${field}: a document holds a non-scalar value there`);
    return value;
  });
}

/** A cursor is base64url JSON of the last node's sort values, the id last. */
export function encodeCursor(values: readonly Scalar[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

export function decodeCursor(cursor: string, keys: readonly OrderKey[]): Scalar[] {
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (cause) {
    throw new InvalidQueryError('malformed cursor', { cause });
  }
  if (
    !Array.isArray(values) ||
    values.length !== keys.length ||
    !values.every(isScalar) ||
    typeof values.at(-1) !== 'string'
  ) {
    throw new InvalidQueryError('malformed cursor, or one from another sort');
  }
  return values;
}

/** The after-cursor for `find`, checked; null when there is none. */
export function checkAfter<T>(options: FindOptions<T>, keys: readonly OrderKey[]): Scalar[] | null {
  const { after } = options;
  if (after === undefined || after === null) return null;
  if (typeof after !== 'string') throw new InvalidQueryError('a cursor must be a string');
  return decodeCursor(after, keys);
}
