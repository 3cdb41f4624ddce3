import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertBlobKey, type BlobInfo, type BlobStore } from '../domain/blob-store.js';

/** How old a partial file must be before the sweep takes it for what a crashed write left. */
const PARTIAL_MAX_AGE_MS = 24 * 3600_000;

interface Meta {
  size: number;
  expiresAt: string;
}

/**
 * Blobs as files in one directory: `<key>.blob` and its metadata `<key>.json` (size, expiry).
 * A write goes to a uniquely named `.partial` file that is renamed once complete, so a reader
 * never sees half a blob, and the metadata is written before the rename, so a complete blob
 * always has its expiry.
 */
export class FileBlobStore implements BlobStore {
  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<FileBlobStore> {
    await mkdir(dir, { recursive: true });
    return new FileBlobStore(dir);
  }

  private path(key: string, extension: 'blob' | 'json'): string {
    return join(this.dir, `${assertBlobKey(key)}.${extension}`);
  }

  async write(key: string, source: Readable, options: { expiresAt: Date }): Promise<BlobInfo> {
    const partial = join(this.dir, `${assertBlobKey(key)}.${randomUUID()}.partial`);
    try {
      await pipeline(source, createWriteStream(partial, { flags: 'wx' }));
      const { size } = await stat(partial);
      const meta: Meta = { size, expiresAt: options.expiresAt.toISOString() };
      const metaPartial = `${partial}.json`;
      await writeFile(metaPartial, JSON.stringify(meta), { flag: 'wx' });
      await rename(metaPartial, this.path(key, 'json'));
      await rename(partial, this.path(key, 'blob'));
      return { key, size, expiresAt: options.expiresAt };
    } catch (error) {
      await rm(partial, { force: true });
      await rm(`${partial}.json`, { force: true });
      throw error;
    }
  }

  private async meta(key: string): Promise<Meta | null> {
    try {
      return JSON.parse(await readFile(this.path(key, 'json'), 'utf8')) as Meta;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async open(key: string, now = new Date()): Promise<{ info: BlobInfo; stream: Readable } | null> {
    const meta = await this.meta(key);
    if (!meta || Date.parse(meta.expiresAt) <= now.getTime()) return null;
    const stream = createReadStream(this.path(key, 'blob'));
    // Opening fails asynchronously: wait for it, so that a missing file is null rather than a broken stream.
    const opened = await new Promise<boolean>((resolve) => {
      stream.once('open', () => resolve(true));
      stream.once('error', () => resolve(false));
    });
    if (!opened) {
      stream.destroy();
      return null;
    }
    return { info: { key, size: meta.size, expiresAt: new Date(meta.expiresAt) }, stream };
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key, 'blob'), { force: true });
    await rm(this.path(key, 'json'), { force: true });
  }

  async deleteExpired(now = new Date()): Promise<number> {
    let deleted = 0;
    for (const name of await readdir(this.dir)) {
      const file = join(this.dir, name);
      if (name.endsWith('.partial') || name.endsWith('.partial.json')) {
        const info = await stat(file).catch(() => null);
        if (info && now.getTime() - info.mtimeMs > PARTIAL_MAX_AGE_MS) await rm(file, { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const key = name.slice(0, -'.json'.length);
      const meta = await this.meta(key).catch(() => null);
      if (meta && Date.parse(meta.expiresAt) <= now.getTime()) {
        await this.delete(key);
        deleted++;
      }
    }
    return deleted;
  }

  async ping(): Promise<void> {
    await stat(this.dir);
  }

  async close(): Promise<void> {}
}
