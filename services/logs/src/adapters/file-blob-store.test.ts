import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileBlobStore } from './file-blob-store.js';

describe('FileBlobStore', () => {
  let dir: string;
  let store: FileBlobStore;
  const later = new Date(Date.now() + 3600_000);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetgraph-blobs-'));
    store = await FileBlobStore.open(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('should store a stream and read it back until it expires', async () => {
    const info = await store.write('lb_1', Readable.from(['hello ', 'world']), { expiresAt: later });
    expect(info).toEqual({ key: 'lb_1', size: 11, expiresAt: later });
    const blob = await store.open('lb_1');
    expect(blob?.info).toEqual(info);
    expect(await text(blob!.stream)).toBe('hello world');
    expect(await store.open('lb_1', new Date(later.getTime() + 1))).toBeNull();
  });

  it('should keep nothing of a write whose source fails', async () => {
    const failing = Readable.from(
      (async function* () {
        yield 'partial data';
        throw new Error('source broke');
      })(),
    );
    await expect(store.write('lb_2', failing, { expiresAt: later })).rejects.toThrow('source broke');
    expect(await store.open('lb_2')).toBeNull();
    expect(await readdir(dir)).toEqual([]);
  });

  it('should delete expired blobs and keep the others', async () => {
    await store.write('old', Readable.from(['x']), { expiresAt: new Date(Date.now() - 1) });
    await store.write('new', Readable.from(['y']), { expiresAt: later });
    expect(await store.deleteExpired()).toBe(1);
    expect((await readdir(dir)).sort()).toEqual(['new.blob', 'new.json']);
    await store.delete('new');
    expect(await readdir(dir)).toEqual([]);
  });

  it('should refuse a key that could name a path', async () => {
    await expect(store.write('../x', Readable.from(['x']), { expiresAt: later })).rejects.toThrow(TypeError);
    await expect(store.open('a/b')).rejects.toThrow(TypeError);
  });
});
