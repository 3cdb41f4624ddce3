import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GridFSBucket, MongoClient, ObjectId, type Db, type GridFSFile } from 'mongodb';
import { assertBlobKey, type BlobInfo, type BlobStore } from '../domain/blob-store.js';

/**
 * How old an upload's chunks without a file document must be before the sweep takes them for
 * what a crashed or aborted write left (as FileBlobStore's partial files): an upload's id is an
 * ObjectId made when it started, so younger ones may still be in flight.
 */
const PARTIAL_MAX_AGE_MS = 24 * 3600_000;

export interface GridFsBlobStoreOptions {
  /** A MongoDB connection string. */
  uri: string;
  /** @default 'fleetgraph_logs', the logs service's own database */
  database?: string;
  /** The bucket: collections `<bucket>.files` and `<bucket>.chunks`. @default 'bundles' */
  bucket?: string;
}

/**
 * Blobs in MongoDB GridFS, for deployments where the logs service keeps no local disk. Each blob is
 * a GridFS file named after its key, its expiry in `metadata.expiresAt` (indexed), read back
 * newest-first by name. GridFS writes the file document only after the last chunk, so a reader
 * never sees half a blob; a failed write aborts the upload, which deletes its chunks, and
 * `deleteExpired` deletes the chunks that a crash (or a chunk landing after the abort) left.
 */
export class GridFsBlobStore implements BlobStore {
  private constructor(
    private readonly client: MongoClient,
    private readonly db: Db,
    private readonly bucket: GridFSBucket,
    private readonly bucketName: string,
  ) {}

  static async connect(options: GridFsBlobStoreOptions): Promise<GridFsBlobStore> {
    const client = new MongoClient(options.uri, { appName: 'fleetgraph-logs' });
    await client.connect();
    const db = client.db(options.database ?? 'fleetgraph_logs');
    const bucketName = options.bucket ?? 'bundles';
    // The driver creates { filename, uploadDate } on first upload; the sweep needs the expiry.
    await db.collection(`${bucketName}.files`).createIndex({ 'metadata.expiresAt': 1 });
    return new GridFsBlobStore(client, db, new GridFSBucket(db, { bucketName }), bucketName);
  }

  async write(key: string, source: Readable, options: { expiresAt: Date }): Promise<BlobInfo> {
    const upload = this.bucket.openUploadStream(assertBlobKey(key), {
      metadata: { expiresAt: options.expiresAt, contentType: 'application/zip' },
    });
    try {
      await pipeline(source, upload);
    } catch (error) {
      // abort() deletes the chunks written so far; when the stream is past aborting, delete them here.
      await upload.abort().catch(() =>
        this.db
          .collection(`${this.bucketName}.chunks`)
          .deleteMany({ files_id: upload.id })
          .catch(() => {}),
      );
      throw error;
    }
    return { key, size: upload.gridFSFile?.length ?? upload.length, expiresAt: options.expiresAt };
  }

  private async current(key: string, now: Date): Promise<GridFSFile | null> {
    const [file] = await this.bucket
      .find({ filename: assertBlobKey(key), 'metadata.expiresAt': { $gt: now } })
      .sort({ uploadDate: -1 })
      .limit(1)
      .toArray();
    return file ?? null;
  }

  async open(key: string, now = new Date()): Promise<{ info: BlobInfo; stream: Readable } | null> {
    const file = await this.current(key, now);
    if (!file) return null;
    return {
      info: { key, size: file.length, expiresAt: new Date(file.metadata!.expiresAt as Date) },
      stream: this.bucket.openDownloadStream(file._id),
    };
  }

  async delete(key: string): Promise<void> {
    for await (const file of this.bucket.find({ filename: assertBlobKey(key) }, { projection: { _id: 1 } })) {
      await this.bucket.delete(file._id).catch(() => {});
    }
  }

  async deleteExpired(now = new Date()): Promise<number> {
    let deleted = 0;
    for await (const file of this.bucket.find({ 'metadata.expiresAt': { $lte: now } }, { projection: { _id: 1 } })) {
      // Counts only what went: a failed delete is retried by the next sweep.
      const gone = await this.bucket.delete(file._id).then(
        () => true,
        () => false,
      );
      if (gone) deleted++;
    }
    await this.deleteOrphanChunks(now);
    return deleted;
  }

  /**
   * Chunks without a file document (GridFS writes it last), of uploads started before the cutoff:
   * a write that crashed midway, or a chunk that landed after its upload was aborted. Not blobs,
   * so not counted.
   */
  private async deleteOrphanChunks(now: Date): Promise<void> {
    const cutoff = ObjectId.createFromTime(Math.floor((now.getTime() - PARTIAL_MAX_AGE_MS) / 1000));
    const chunks = this.db.collection(`${this.bucketName}.chunks`);
    // Only ObjectIds compare with an ObjectId bound, and GridFS makes every upload's id one.
    const ids: ObjectId[] = await chunks.distinct('files_id', { files_id: { $lt: cutoff } });
    if (ids.length === 0) return;
    const files = await this.db
      .collection(`${this.bucketName}.files`)
      .find({ _id: { $in: ids } }, { projection: { _id: 1 } })
      .toArray();
    const kept = new Set(files.map((file) => String(file._id)));
    const orphans = ids.filter((id) => !kept.has(id.toHexString()));
    if (orphans.length > 0) await chunks.deleteMany({ files_id: { $in: orphans } });
  }

  async ping(): Promise<void> {
    await this.db.command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
