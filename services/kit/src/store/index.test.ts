import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createStore } from './index.js';

const dataDir = mkdtempSync(join(tmpdir(), 'fleetgraph-store-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('createStore', () => {
  it('should open a SQLite file named after the service under dataDir when no MongoDB URI is set', async () => {
    const store = await createStore({ dataDir: join(dataDir, 'data'), service: 'clusters', mongodbUri: '' });
    await store.ping();
    await store.close();

    expect(existsSync(join(dataDir, 'data', 'clusters.sqlite'))).toBe(true);
  });

  it('should reject a service name that cannot name a file or a database', async () => {
    await expect(createStore({ dataDir, service: '../etc' })).rejects.toThrow(TypeError);
  });
});
