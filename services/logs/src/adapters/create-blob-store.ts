import { join } from 'node:path';
import type { BlobStore } from '../domain/blob-store.js';
import { FileBlobStore } from './file-blob-store.js';
import { GridFsBlobStore } from './gridfs-blob-store.js';

/**
 * The blob store: GridFS in the logs service's database when MONGODB_URI is set, else files under
 * `<DATA_DIR>/log-bundles`.
 */
export async function createBlobStore(options: { mongodbUri?: string; dataDir: string }): Promise<BlobStore> {
  if (options.mongodbUri) return GridFsBlobStore.connect({ uri: options.mongodbUri });
  return FileBlobStore.open(join(options.dataDir, 'log-bundles'));
}
