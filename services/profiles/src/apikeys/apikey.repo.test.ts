import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMongoStore, createSqliteStore, Identity, type Store, type StoredDoc } from '@fleetgraph/kit';
import { dropMongoDatabase } from '@fleetgraph/kit/testing';
import { hashApiKeySecret } from '@fleetgraph/schema';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { API_KEY_LIMITS, LAST_USE_RESOLUTION_MS } from './apikey.js';
import { ApiKeyRepository } from './apikey.repo.js';

/**
 * The API key repository over every store adapter, as the kit's store contract runs: SQLite (a
 * file and `:memory:`), and MongoDB when MONGODB_URI is set (a fresh database, dropped afterwards).
 */
const dir = mkdtempSync(join(tmpdir(), 'fleetgraph-apikeys-'));
const mongoUri = process.env.MONGODB_URI;
const mongoDatabase = `fleetgraph_test_${randomBytes(6).toString('hex')}`;
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (mongoUri) await dropMongoDatabase(mongoUri, mongoDatabase);
});

let files = 0;
const adapters: [string, () => Store][] = [
  ['sqlite (file)', () => createSqliteStore({ file: join(dir, `keys-${++files}.sqlite`) })],
  ['sqlite (:memory:)', () => createSqliteStore({ file: ':memory:' })],
];

const T0 = new Date('2026-03-01T12:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const admin = (tenantId: string, projectId: string) =>
  new Identity({ sub: 'ada', tenantId, projects: { [projectId]: 'admin' } });

describe.each(adapters)('API keys in the store: %s', (_name, makeStore) => describeRepository(makeStore));
describe.skipIf(!mongoUri)('API keys in the store: mongodb', () =>
  describeRepository(() => createMongoStore({ uri: mongoUri!, database: mongoDatabase })),
);

function describeRepository(makeStore: () => Store | Promise<Store>) {
  let store: Store;
  let keys: ApiKeyRepository;
  beforeEach(async () => {
    store = await makeStore();
    keys = await ApiKeyRepository.open(store);
  });
  afterEach(async () => {
    await store.close();
  });

  const create = (tenantId = 't1', projectId = 'p1', now = T0, expiresAt: Date | null = null) =>
    keys.create(tenantId, 'ada', { projectId, name: ' deployer ', role: 'EDITOR', expiresAt }, now);

  it('should store a new key with the hash of its secret, never the secret', async () => {
    const { key, secret } = await create();
    expect(key).toMatchObject({
      id: expect.stringMatching(/^apk_[0-9A-Z]{26}$/),
      tenantId: 't1',
      projectId: 'p1',
      name: 'deployer',
      role: 'EDITOR',
      createdBy: 'ada',
      createdAt: T0.toISOString(),
      expiresAt: null,
      lastUsedAt: null,
      revokedAt: null,
      secretHash: hashApiKeySecret(secret),
    });
    const raw = await store.collection<StoredDoc>({ name: 'api_keys', indexes: [] });
    const stored = JSON.stringify(await raw.get(key.id));
    expect(stored).toContain(key.secretHash);
    expect(stored).not.toContain(secret);
  });

  it('should verify a key by id and secret hash only, recording its use at most once a minute', async () => {
    const { key, secret } = await create();
    const hash = hashApiKeySecret(secret);
    expect(await keys.verify(key.id, hashApiKeySecret(`${secret}x`), at(1))).toBeNull();
    expect(await keys.verify('apk_01HZY3T8D6M7Q5W2X9B4C1N0PR', hash, at(1))).toBeNull();

    expect((await keys.verify(key.id, hash, at(1000)))?.lastUsedAt).toBe(at(1000).toISOString());
    // Within the minute: not written again.
    expect((await keys.verify(key.id, hash, at(30_000)))?.lastUsedAt).toBe(at(1000).toISOString());
    const later = at(1000 + LAST_USE_RESOLUTION_MS);
    expect((await keys.verify(key.id, hash, later))?.lastUsedAt).toBe(later.toISOString());
    expect((await keys.get(admin('t1', 'p1'), key.id))?.lastUsedAt).toBe(later.toISOString());
  });

  it('should answer a revoked or expired key as it is, without recording a use', async () => {
    const { key, secret } = await create('t1', 'p1', T0, at(60_000));
    const hash = hashApiKeySecret(secret);
    expect(await keys.verify(key.id, hash, at(60_000))).toMatchObject({
      lastUsedAt: null,
      expiresAt: at(60_000).toISOString(),
    });

    const revoked = await keys.revoke(key.id, at(1000));
    expect(revoked?.revokedAt).toBe(at(1000).toISOString());
    // Revoking again changes nothing.
    expect((await keys.revoke(key.id, at(2000)))?.revokedAt).toBe(at(1000).toISOString());
    expect(await keys.verify(key.id, hash, at(3000))).toMatchObject({
      revokedAt: at(1000).toISOString(),
      lastUsedAt: null,
    });
    expect(await keys.revoke('apk_01HZY3T8D6M7Q5W2X9B4C1N0PR')).toBeNull();
  });

  it('should revoke a key whose use was recorded since it was read', async () => {
    const { key, secret } = await create();
    // Two writers at once: the use is recorded first, the revocation retries on the new version.
    const [used, revoked] = await Promise.all([
      keys.verify(key.id, hashApiKeySecret(secret), at(10)),
      keys.revoke(key.id, at(20)),
    ]);
    expect(used?.id).toBe(key.id);
    expect(revoked?.revokedAt).toBe(at(20).toISOString());
    expect((await keys.get(admin('t1', 'p1'), key.id))?.revokedAt).toBe(at(20).toISOString());
  });

  it("should list a project's keys newest first, and show a key only within its tenant and readable projects", async () => {
    const first = await create('t1', 'p1', at(0));
    const second = await create('t1', 'p1', at(1000));
    const otherProject = await create('t1', 'p2', at(2000));
    const otherTenant = await create('t2', 'p1', at(3000));
    expect((await keys.list('t1', 'p1')).map((k) => k.id)).toEqual([second.key.id, first.key.id]);
    expect((await keys.list('t2', 'p1')).map((k) => k.id)).toEqual([otherTenant.key.id]);

    const p1Admin = admin('t1', 'p1');
    expect(await keys.get(p1Admin, first.key.id)).not.toBeNull();
    expect(await keys.get(p1Admin, otherProject.key.id)).toBeNull();
    expect(await keys.get(p1Admin, otherTenant.key.id)).toBeNull();
    expect(
      await keys.get(new Identity({ sub: 'x', tenantId: 't1', tenantAdmin: true }), otherProject.key.id),
    ).not.toBeNull();
  });

  it('should count the keys of a project that are not revoked, and list at most the newest ones', async () => {
    for (let i = 0; i < 3; i++) await create('t1', 'p1', at(i));
    const { key } = await create('t1', 'p1', at(10));
    await keys.revoke(key.id);
    expect(await keys.countUnrevoked('t1', 'p1')).toBe(3);
    expect(await keys.countUnrevoked('t1', 'p2')).toBe(0);
    expect(API_KEY_LIMITS.listed).toBeGreaterThan(API_KEY_LIMITS.activePerProject);
  });
}
