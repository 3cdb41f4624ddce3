import { createRequire } from 'node:module';
import { createLogger, createSqliteStore, Identity, type Claims, type Store } from '@fleetgraph/kit';
import { parseApiKey } from '@fleetgraph/schema';
import { graphql, type GraphQLSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ProfileRepository } from '../adapters/profile.repo.js';
import { buildProfilesSchema } from '../schema/index.js';
import type { ApiKey } from './apikey.js';
import { ApiKeyRepository } from './apikey.repo.js';

// Vite resolves `graphql` to its ESM build while type-graphql and @apollo/subgraph, loaded by Node,
// get the CommonJS one: use the one Node loads everywhere (as the health subgraph's test does).
vi.mock('graphql', () => createRequire(import.meta.url)('graphql'));

const log = createLogger('apikeys-test', 'silent');
const CREATE = /* GraphQL */ `
  mutation ($input: CreateApiKeyInput!) {
    createApiKey(input: $input) { apiKey { id projectId name role expiresAt lastUsedAt revokedAt } secret userErrors { field code } }
  }
`;
const LIST = /* GraphQL */ `
  query ($p: ID!) { apiKeys(projectId: $p) { id name role revokedAt } }
`;
const REVOKE = /* GraphQL */ `
  mutation ($id: ID!) { revokeApiKey(id: $id) { apiKey { id revokedAt } userErrors { field code } } }
`;

const as = (claims: Partial<Claims> & Pick<Claims, 'tenantId'>) => new Identity({ sub: 'u1', ...claims });
const admin = as({ tenantId: 't1', projects: { p1: 'admin', p2: 'viewer' } });
const editor = as({ tenantId: 't1', projects: { p1: 'editor' } });
const stranger = as({ tenantId: 't2', projects: { p1: 'admin' }, tenantAdmin: true });

describe('API keys in the profiles subgraph', () => {
  let store: Store;
  let schema: GraphQLSchema;
  const announced: ApiKey[] = [];
  const run = (source: string, variables: Record<string, unknown>, identity: Identity) =>
    graphql({ schema, source, variableValues: variables, contextValue: { identity, requestId: 'r', log } });
  const create = async (input: Record<string, unknown>, identity = admin) =>
    run(CREATE, { input: { projectId: 'p1', name: 'ci', role: 'EDITOR', ...input } }, identity);

  beforeAll(async () => {
    store = createSqliteStore({ file: ':memory:' });
    schema = await buildProfilesSchema({
      profiles: await ProfileRepository.open(store, { add: () => ({}), kick: () => {} } as never),
      apiKeys: await ApiKeyRepository.open(store),
      announceRevocation: async (key) => void announced.push(key),
    });
  });
  afterAll(() => store.close());

  it('should create a key for a project admin and show its secret once', async () => {
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    const result = await create({ expiresAt });
    expect(result.errors).toBeUndefined();
    const payload = result.data!.createApiKey as { apiKey: { id: string }; secret: string; userErrors: unknown[] };
    expect(payload).toEqual({
      apiKey: {
        id: expect.stringMatching(/^apk_/),
        projectId: 'p1',
        name: 'ci',
        role: 'EDITOR',
        expiresAt,
        lastUsedAt: null,
        revokedAt: null,
      },
      secret: expect.stringMatching(/^fgk_apk_/),
      userErrors: [],
    });
    expect(parseApiKey(payload.secret)?.id).toBe(payload.apiKey.id);
    // Listed without it: the schema has no field that could show it again.
    const listed = await run(LIST, { p: 'p1' }, admin);
    expect(listed).toEqual({
      data: { apiKeys: [{ id: payload.apiKey.id, name: 'ci', role: 'EDITOR', revokedAt: null }] },
    });
    expect(JSON.stringify(listed)).not.toContain(parseApiKey(payload.secret)!.secret);
  });

  it('should refuse keys to everyone but the project admins, and to API keys themselves', async () => {
    for (const [identity, input] of [
      [editor, {}],
      [admin, { projectId: 'p2' }],
      [as({ tenantId: 't1', tenantAdmin: true }), {}],
      [as({ sub: 'apikey:apk_01HZY3T8D6M7Q5W2X9B4C1N0PR', tenantId: 't1', projects: { p1: 'admin' } }), {}],
    ] as const) {
      const result = await create(input, identity);
      expect([identity.userId, result.data, result.errors?.[0]?.extensions?.code]).toEqual([
        identity.userId,
        null,
        'FORBIDDEN',
      ]);
    }
    expect((await run(LIST, { p: 'p1' }, editor)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // A tenant admin reads every project's keys, and writes none by that right.
    expect((await run(LIST, { p: 'p1' }, as({ tenantId: 't1', tenantAdmin: true }))).errors).toBeUndefined();
  });

  it('should return invalid input as userErrors, creating nothing', async () => {
    const before = ((await run(LIST, { p: 'p1' }, admin)).data!.apiKeys as unknown[]).length;
    const result = await create({ name: '', expiresAt: new Date(Date.now() - 1000).toISOString() });
    expect(result.data!.createApiKey).toEqual({
      apiKey: null,
      secret: null,
      userErrors: [
        { field: ['input', 'name'], code: 'INVALID_NAME' },
        { field: ['input', 'expiresAt'], code: 'INVALID_EXPIRY' },
      ],
    });
    expect(((await run(LIST, { p: 'p1' }, admin)).data!.apiKeys as unknown[]).length).toBe(before);
  });

  it("should revoke a key, announce it every time, and answer another tenant's id as an unknown one", async () => {
    const created = (await create({ name: 'to-revoke' })).data!.createApiKey as { apiKey: { id: string } };
    const id = created.apiKey.id;
    for (const identity of [stranger, as({ tenantId: 't1', projects: { p2: 'admin' } })]) {
      expect((await run(REVOKE, { id }, identity)).data).toEqual({
        revokeApiKey: { apiKey: null, userErrors: [{ field: ['id'], code: 'NOT_FOUND' }] },
      });
    }
    expect((await run(REVOKE, { id: 'apk_unknown' }, admin)).data!.revokeApiKey).toEqual({
      apiKey: null,
      userErrors: [{ field: ['id'], code: 'NOT_FOUND' }],
    });
    expect((await run(REVOKE, { id }, editor)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(announced).toEqual([]);

    const revoked = await run(REVOKE, { id }, admin);
    const revokedAt = (revoked.data!.revokeApiKey as { apiKey: { revokedAt: string } }).apiKey.revokedAt;
    expect(revoked.data!.revokeApiKey).toEqual({ apiKey: { id, revokedAt: expect.any(String) }, userErrors: [] });
    expect((await run(REVOKE, { id }, admin)).data!.revokeApiKey).toEqual({
      apiKey: { id, revokedAt },
      userErrors: [],
    });
    expect(announced.map((k) => [k.id, k.tenantId])).toEqual([
      [id, 't1'],
      [id, 't1'],
    ]);
  });

  it('should resolve a key as an entity (Query.node) for the readers of the list only', async () => {
    const id = ((await create({ name: 'entity' })).data!.createApiKey as { apiKey: { id: string } }).apiKey.id;
    const ENTITY = `query($r: [_Any!]!) { _entities(representations: $r) { ... on ApiKey { id name } } }`;
    const entity = async (identity: Identity, key = id) =>
      (await run(ENTITY, { r: [{ __typename: 'ApiKey', id: key }] }, identity)).data!._entities;

    expect(await entity(admin)).toEqual([{ id, name: 'entity' }]);
    expect(await entity(as({ tenantId: 't1', tenantAdmin: true }))).toEqual([{ id, name: 'entity' }]);
    for (const identity of [editor, as({ tenantId: 't1', projects: { p1: 'viewer' } }), stranger])
      expect(await entity(identity), identity.userId).toEqual([null]);
    expect(await entity(admin, 'apk_01HZY3T8D6M7Q5W2X9B4C1N0PR')).toEqual([null]);
  });

  it('should refuse a new key beyond the keys a project may hold unrevoked', async () => {
    const full = as({ tenantId: 't3', projects: { p1: 'admin' } });
    for (let i = 0; i < 100; i++) expect((await create({}, full)).data!.createApiKey).toMatchObject({ userErrors: [] });
    expect((await create({}, full)).data!.createApiKey).toMatchObject({
      apiKey: null,
      userErrors: [{ field: ['input', 'projectId'], code: 'TOO_MANY_API_KEYS' }],
    });
  });
});
