import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteStore } from './sqlite.js';
import { describeStoreContract } from './store.contract.js';
import { type FindOptions, type Scalar, type StoredDoc, VersionConflictError } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetgraph-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A directory that does not exist yet: the store creates it.
const file = join(dir, 'data', 'kit', 'kit.sqlite');

describeStoreContract('sqlite (file)', async () => createSqliteStore({ file }), { durable: true });
describeStoreContract('sqlite (:memory:)', async () => createSqliteStore({ file: ':memory:' }));

interface Sample extends StoredDoc {
  clusterId: string;
  time: string;
}

interface Flag extends StoredDoc {
  clusterId: string;
  value: Scalar;
}

function aSample(n: number): Omit<Sample, 'version'> {
  return {
    id: `sm-${String(n).padStart(4, '0')}`,
    clusterId: `c${n % 3}`,
    time: new Date(Date.UTC(2026, 0, 1, 0, n % 20)).toISOString(),
  };
}

describe('sqlite store', () => {
  it('should create the file and its directory, in WAL mode', async () => {
    const path = join(dir, 'wal', 'nested', 'svc.sqlite');
    const store = createSqliteStore({ file: path });
    await store.ping();
    await store.close();

    expect(existsSync(path)).toBe(true);
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
  });

  it('should serve filters, sorts and every page after a cursor from an index, without sorting', async () => {
    const store = createSqliteStore({ file: ':memory:' });
    const samples = await store.collection<Sample>({
      name: 'samples',
      indexes: [{ fields: ['clusterId', 'time'] }, { fields: ['time'] }],
    });
    for (let n = 0; n < 60; n++) await samples.insert(aSample(n));
    const newest = { where: { clusterId: 'c1' }, orderBy: [{ field: 'time', direction: 'desc' }], first: 5 } as const;
    const oldest = { where: { time: { gte: aSample(3).time } }, orderBy: [{ field: 'time' }], first: 5 } as const;
    const queries = [
      newest,
      { ...newest, after: (await samples.find(newest)).endCursor },
      oldest,
      { ...oldest, after: (await samples.find(oldest)).endCursor },
      { first: 5, after: (await samples.find({ first: 5 })).endCursor },
    ];

    for (const query of queries) {
      const plan = samples.explain(query);
      expect(plan.length, JSON.stringify(query)).toBeGreaterThan(0);
      for (const step of plan) expect(step, JSON.stringify(query)).toMatch(/^SEARCH \S+ USING (COVERING )?INDEX /);
    }
    await store.close();
  });

  it('should keep booleans apart from numbers and still serve the filters from an index', async () => {
    const store = createSqliteStore({ file: ':memory:' });
    const flags = await store.collection<Flag>({
      name: 'flags',
      indexes: [{ fields: ['value'] }, { fields: ['clusterId', 'value'] }],
    });
    const values = [true, false, 1, 0, 5, '5', null];
    for (let n = 0; n < 70; n++) await flags.insert({ id: `f-${n}`, clusterId: `c${n % 2}`, value: values[n % 7]! });
    const queries: FindOptions<Flag>[] = [
      { where: { value: true } },
      { where: { value: 1 } },
      { where: { value: { in: [1, 5] } } },
      { where: { value: { in: [true, null] } } },
      { where: { clusterId: 'c1', value: false } },
      { where: { clusterId: 'c1', value: { gt: 0 } } },
      { where: { value: { gte: 0, lt: 5 } }, orderBy: [{ field: 'value' }] },
    ];

    for (const query of queries) {
      for (const step of flags.explain(query)) {
        expect(step, JSON.stringify(query)).toMatch(
          /^(SEARCH \S+ USING (COVERING )?INDEX |USE TEMP B-TREE FOR ORDER BY|LIST SUBQUERY|SCAN json_each|CREATE BLOOM FILTER|MULTI-INDEX OR|INDEX \d)/,
        );
      }
    }
    expect(await flags.count({ value: 1 })).toBe(10);
    expect(await flags.count({ value: { gt: 0 } })).toBe(20);
    await store.close();
  });

  it('should see the writes of another connection to the same file, compare-and-set included', async () => {
    const path = join(dir, 'shared.sqlite');
    const a = createSqliteStore({ file: path });
    const b = createSqliteStore({ file: path });
    const spec = { name: 'samples', indexes: [{ fields: ['clusterId', 'time'] }] } as const;
    const fromA = await a.collection<Sample>(spec);
    const fromB = await b.collection<Sample>(spec);

    const read = await fromA.insert(aSample(1));
    await fromB.replace({ ...(await fromB.get(read.id))!, clusterId: 'moved' });

    await expect(fromA.replace({ ...read, clusterId: 'stale' })).rejects.toThrow(VersionConflictError);
    expect(await fromA.get(read.id)).toMatchObject({ clusterId: 'moved', version: 2 });
    await a.close();
    await b.close();
  });
});
