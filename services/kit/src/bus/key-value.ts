import { StorageType, type JetStreamClient, type KV } from 'nats';
import type { z } from 'zod';
import { encode, parseJson } from './codec.js';

/** A JetStream key-value bucket: its name, the schema of its values, and how long a key outlives its last write. */
export interface KeyValueDef<T> {
  /** The bucket's name (`[A-Za-z0-9_-]`); its stream is `KV_<bucket>`. */
  bucket: string;
  schema: z.ZodType<T>;
  /** A key not written for this long disappears (the stream's max age). */
  ttlMs: number;
  /** Where the server keeps it: in memory for what is worth nothing after a restart. @default 'file' */
  storage?: 'file' | 'memory';
}

/** Defines a key-value bucket once, for every process that opens it. */
export const defineKeyValue = <T>(def: KeyValueDef<T>): KeyValueDef<T> => def;

/** A key's current value and the revision to update it from. */
export interface KeyValueEntry<T> {
  /** Undefined when the stored value does not match the schema: `update` at `revision` replaces it. */
  value: T | undefined;
  revision: number;
}

/**
 * A bucket of JSON values with compare-and-set writes, opened on first use (and again after a
 * failed opening). Every operation gives up after `timeoutMs`.
 */
export interface KeyValueBucket<T> {
  /** The key's value, or undefined when it has none (never written, deleted, or expired). */
  get(key: string): Promise<KeyValueEntry<T> | undefined>;
  /** Writes the key's first value. @throws KeyValueConflictError when it has one @returns its revision */
  create(key: string, value: T): Promise<number>;
  /** Writes the key if `revision` is still its last. @throws KeyValueConflictError otherwise @returns the new revision */
  update(key: string, value: T, revision: number): Promise<number>;
}

/** A compare-and-set write lost: the key was written since the revision it was based on. */
export class KeyValueConflictError extends Error {
  constructor(
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(`key ${key} changed since it was read`, options);
    this.name = 'KeyValueConflictError';
  }
}

/** JetStream's "wrong last sequence": the expected revision is not the key's last. */
const WRONG_LAST_SEQUENCE = 10071;

const isConflict = (error: unknown) =>
  (error as { api_error?: { err_code?: number } } | undefined)?.api_error?.err_code === WRONG_LAST_SEQUENCE;

function within<T>(what: string, timeoutMs: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer in ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Opens a key-value bucket through the bus's JetStream client (see Bus.keyValue). */
export function openKeyValue<T>(
  jetstream: JetStreamClient,
  def: KeyValueDef<T>,
  options: { replicas: number; timeoutMs: number },
): KeyValueBucket<T> {
  let opened: Promise<KV> | undefined;
  const kv = () =>
    (opened ??= within(
      `key-value bucket ${def.bucket}`,
      options.timeoutMs,
      jetstream.views.kv(def.bucket, {
        history: 1,
        ttl: def.ttlMs,
        replicas: options.replicas,
        storage: def.storage === 'memory' ? StorageType.Memory : StorageType.File,
        timeout: options.timeoutMs,
      }),
    ).catch((error: unknown) => {
      opened = undefined;
      throw error;
    }));
  const write = async (key: string, operation: (bucket: KV) => Promise<number>) => {
    try {
      return await within(`write of ${def.bucket}/${key}`, options.timeoutMs, kv().then(operation));
    } catch (error) {
      throw isConflict(error) ? new KeyValueConflictError(key, { cause: error }) : error;
    }
  };
  return {
    async get(key) {
      const entry = await within(
        `read of ${def.bucket}/${key}`,
        options.timeoutMs,
        kv().then((bucket) => bucket.get(key)),
      );
      if (!entry || entry.operation !== 'PUT') return undefined;
      const json = parseJson(entry.value);
      const parsed = json.ok ? def.schema.safeParse(json.value) : undefined;
      return { value: parsed?.success ? parsed.data : undefined, revision: entry.revision };
    },
    create: (key, value) => write(key, (bucket) => bucket.create(key, encode(def.schema.parse(value)))),
    update: (key, value, revision) =>
      write(key, (bucket) => bucket.update(key, encode(def.schema.parse(value)), revision)),
  };
}
