import { createRequire } from 'node:module';
import { BusError, createLogger, Identity, requestSubject, type Claims, type RequestDef } from '@fleetgraph/kit';
import { graphql, type GraphQLSchema } from 'graphql';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildClustersSchema } from './index.js';

// Vite resolves `graphql` to its ESM build while type-graphql and @apollo/subgraph, loaded by Node,
// get the CommonJS one: use the one Node loads everywhere (as the health subgraph's test does).
vi.mock('graphql', () => createRequire(import.meta.url)('graphql'));

const log = createLogger('node-test', 'silent');
const ULID = '01J9ZQ3V5X7K8M2N4P6R8T0W1Y';
const NODE = /* GraphQL */ `
  query ($id: ID!) { node(id: $id) { __typename id ... on Cluster { name } ... on Webhook { url } } }
`;

const as = (claims: Partial<Claims>) => new Identity({ sub: 'u1', tenantId: 't1', ...claims });
const admin = as({ projects: { p1: 'admin' } });
const viewer = as({ projects: { p1: 'viewer' } });

const cluster = { id: `cls_${ULID}`, tenantId: 't1', projectId: 'p1', name: 'web', profileId: `prof_${ULID}` };
const webhook = { id: `whk_${ULID}`, tenantId: 't1', projectId: 'p1', url: 'https://hooks.example.com/' };

/** Stand-ins for what Query.node reads: one cluster and one webhook here, the other types' owners on "NATS". */
function fakes() {
  const asked: { subject: string; request: unknown }[] = [];
  let answer: (request: { type: string; id: string }) => Promise<{ readable: boolean }> = async () => ({
    readable: true,
  });
  const deps = {
    clusters: {
      get: async (identity: Identity, id: string) => (id === cluster.id && identity.canSee(cluster) ? cluster : null),
      getStatus: async () => null,
    },
    bus: {
      request: async (def: RequestDef<unknown, unknown>, request: { type: string; id: string }) => {
        asked.push({ subject: requestSubject(def, request), request });
        return answer(request);
      },
    },
    webhooks: {
      repo: {
        get: async (id: string) =>
          id === webhook.id ? { ...webhook, enabled: true, events: [], createdAt: '2025-01-01T00:00:00Z' } : null,
      },
    },
  };
  return { deps, asked, answerWith: (next: typeof answer) => (answer = next) };
}

describe('Query.node in the clusters subgraph', () => {
  let schema: GraphQLSchema;
  let world: ReturnType<typeof fakes>;
  const node = async (id: string, identity: Identity) =>
    graphql({ schema, source: NODE, variableValues: { id }, contextValue: { identity, requestId: 'r', log } });

  beforeAll(async () => {
    world = fakes();
    schema = await buildClustersSchema(world.deps as never);
  });
  beforeEach(() => {
    world.asked.length = 0;
    world.answerWith(async () => ({ readable: true }));
  });

  it('should answer a cluster and a webhook it owns, to whom may read them', async () => {
    expect(await node(cluster.id, viewer)).toEqual({
      data: { node: { __typename: 'Cluster', id: cluster.id, name: 'web' } },
    });
    expect(await node(webhook.id, admin)).toEqual({
      data: { node: { __typename: 'Webhook', id: webhook.id, url: webhook.url } },
    });
    // Webhooks are for the project's admins; another tenant sees neither.
    expect(await node(webhook.id, viewer)).toEqual({ data: { node: null } });
    for (const id of [cluster.id, webhook.id])
      expect(await node(id, new Identity({ sub: 'u2', tenantId: 't2', tenantAdmin: true }))).toEqual({
        data: { node: null },
      });
    expect(world.asked).toEqual([]);
  });

  it.each([
    ['ClusterProfile', `prof_${ULID}`, 'profiles.v1.node.ClusterProfile'],
    ['ApiKey', `apk_${ULID}`, 'profiles.v1.node.ApiKey'],
    ['Image', `img_${ULID}`, 'images.v1.node.Image'],
    ['LogBundle', `lb_${ULID}`, 'logs.v1.node.LogBundle'],
  ])('should answer a %s by its id once its owner says the caller may read it', async (type, id, subject) => {
    expect(await node(id, viewer)).toEqual({ data: { node: { __typename: type, id } } });
    expect(world.asked).toEqual([{ subject, request: { type, id, claims: viewer.claims } }]);

    world.answerWith(async () => ({ readable: false }));
    expect(await node(id, viewer)).toEqual({ data: { node: null } });
  });

  it.each(['', 'web', `cls_${ULID.toLowerCase()}`, `usr_${ULID}`, `prof_${ULID}x`, `cls_${'0'.repeat(27)}`])(
    'should answer null for the malformed id %j, asking no one',
    async (id) => {
      expect(await node(id, admin)).toEqual({ data: { node: null } });
      expect(world.asked).toEqual([]);
    },
  );

  it('should answer null for an unknown id of its own types', async () => {
    for (const id of [`cls_${'1'.repeat(26)}`, `whk_${'1'.repeat(26)}`])
      expect(await node(id, admin)).toEqual({ data: { node: null } });
  });

  it('should be SERVICE_UNAVAILABLE when the owner cannot be reached', async () => {
    world.answerWith(async () => {
      throw new BusError('NO_RESPONDERS', 'no service answers profiles.v1.node.{type}');
    });
    const result = await node(`prof_${ULID}`, viewer);
    expect(result.data).toEqual({ node: null });
    expect(result.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([
      ['the profiles service cannot be reached', 'SERVICE_UNAVAILABLE'],
    ]);
  });
});
