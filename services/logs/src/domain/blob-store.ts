import type { Readable } from 'node:stream';

/** A stored blob's metadata. */
export interface BlobInfo {
  key: string;
  size: number;
  expiresAt: Date;
}

/**
 * Where archives are kept: written once as a stream, read as a stream, deleted when they
 * expire. Adapters: files under DATA_DIR (`FileBlobStore`, the default) and MongoDB GridFS
 * (`GridFsBlobStore`, when MONGODB_URI is set). Keys are plain ids (letters, digits, `-`, `_`).
 */
export interface BlobStore {
  /**
   * Streams `source` into the blob `key` (replacing none: keys are unique) with backpressure,
   * and resolves once it is stored whole. On any error (of the source, or of the storage) the
   * partial blob is removed and the promise rejects with that error.
   */
  write(key: string, source: Readable, options: { expiresAt: Date }): Promise<BlobInfo>;
  /** The blob and a stream of its bytes; null when it is missing or expired. */
  open(key: string, now?: Date): Promise<{ info: BlobInfo; stream: Readable } | null>;
  /** Deletes the blob, if it exists. */
  delete(key: string): Promise<void>;
  /** Deletes every blob expired at `now`, and what failed writes left behind; returns how many blobs. */
  deleteExpired(now?: Date): Promise<number>;
  /** Throws when the storage cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const KEY = /^[A-Za-z0-9_-]{1,128}$/;

/** @throws TypeError unless the key is a plain id, so that it can never name a path or a query. */
export function assertBlobKey(key: string): string {
  if (!KEY.test(key)) throw new TypeError(`blob key must match ${KEY}, got ${JSON.stringify(key)}`);
  return key;
}
