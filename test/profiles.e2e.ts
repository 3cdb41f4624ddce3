import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seed, startPlatform, type Platform } from './src/index.js';

const CREATE = /* GraphQL */ `
  mutation Create($input: CreateClusterProfileInput!) {
    createClusterProfile(input: $input) {
      profile { id projectId name version description cloud createdAt layers { type name version values ansibleRoles imageRef skipK8sInstall } }
      userErrors { field code message }
    }
  }
`;
const GET = /* GraphQL */ `
  query Get($id: ID!) { clusterProfile(id: $id) { id name version versions { version } } }
`;
const LIST = /* GraphQL */ `
  query List($projectId: ID, $first: Int, $after: String) {
    clusterProfiles(projectId: $projectId, first: $first, after: $after) { nodes { id projectId name version } pageInfo { hasNextPage endCursor } }
  }
`;

describe('profiles through the gateway', () => {
  let platform: Platform;
  const tenant = seed.tenant();
  const project = seed.project();
  const otherProject = seed.project();
  let editor: string;
  let viewer: string;
  let tenantAdmin: string;
  let stranger: string;

  beforeAll(async () => {
    platform = await startPlatform();
    editor = await platform.token(seed.user(tenant, { [project]: 'editor', [otherProject]: 'admin' }));
    viewer = await platform.token(seed.user(tenant, { [project]: 'viewer' }));
    tenantAdmin = await platform.token(seed.user(tenant, {}, { tenantAdmin: true }));
    // Another tenant, whose user even claims a role in a project of the same name.
    stranger = await platform.token(seed.user(seed.tenant(), { [project]: 'admin' }, { tenantAdmin: true }));
  });

  afterAll(async () => {
    await platform?.stop();
  });

  const create = async (input: Record<string, unknown>, token = editor) => {
    const response = await platform.graphql(CREATE, { input }, token);
    return response;
  };
  const count = async (projectId: string, token = editor) =>
    (await platform.graphql(LIST, { projectId, first: 100 }, token)).data!.clusterProfiles.nodes.length;

  it('should create a profile, read it back and list it', async () => {
    const created = await create(seed.profileInput(project));
    expect(created.errors).toBeUndefined();
    const payload = created.data!.createClusterProfile;
    expect(payload.userErrors).toEqual([]);
    expect(payload.profile).toMatchObject({
      projectId: project,
      name: 'web',
      version: '1.0.0',
      cloud: 'LOCAL',
      layers: [
        { type: 'OS', name: 'ubuntu', version: '22.04', values: null },
        { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4', values: 'apiServer:\n  auditLog: true\n' },
        { type: 'CNI', name: 'calico' },
        { type: 'ADDON', name: 'prometheus' },
      ],
    });
    expect(new Date(payload.profile.createdAt).toISOString()).toBe(payload.profile.createdAt);

    const got = await platform.graphql(GET, { id: payload.profile.id }, viewer);
    expect(got.data).toEqual({
      clusterProfile: { id: payload.profile.id, name: 'web', version: '1.0.0', versions: [{ version: '1.0.0' }] },
    });

    const listed = await platform.graphql(LIST, { projectId: project }, viewer);
    expect(listed.data!.clusterProfiles.nodes.map((n: { id: string }) => n.id)).toContain(payload.profile.id);
  });

  it('should list versions newest first by semantic version', async () => {
    for (const version of ['1.2.0', '1.10.0', '1.9.1']) {
      expect(
        (await create(seed.profileInput(project, { name: 'versioned', version }))).data!.createClusterProfile
          .userErrors,
      ).toEqual([]);
    }
    const list = await platform.graphql(LIST, { projectId: project, first: 100 }, editor);
    const any = list.data!.clusterProfiles.nodes.find((n: { name: string }) => n.name === 'versioned');
    const got = await platform.graphql(GET, { id: any.id }, editor);
    expect(got.data!.clusterProfile.versions).toEqual([
      { version: '1.10.0' },
      { version: '1.9.1' },
      { version: '1.2.0' },
    ]);
  });

  it('should page through profiles without gaps or repeats', async () => {
    for (let i = 0; i < 7; i++) await create(seed.profileInput(otherProject, { name: `paged-${i}` }));
    const seen: string[] = [];
    let after: string | null = null;
    do {
      const page: any = await platform.graphql(LIST, { projectId: otherProject, first: 3, after }, editor);
      seen.push(...page.data.clusterProfiles.nodes.map((n: { name: string }) => n.name));
      after = page.data.clusterProfiles.pageInfo.hasNextPage ? page.data.clusterProfiles.pageInfo.endCursor : null;
    } while (after);
    expect(seen).toEqual(Array.from({ length: 7 }, (_, i) => `paged-${6 - i}`));
  });

  it('should list every readable project without projectId, and the whole tenant for a tenant admin', async () => {
    const mine = await platform.graphql(LIST, { first: 100 }, viewer);
    expect(new Set(mine.data!.clusterProfiles.nodes.map((n: { projectId: string }) => n.projectId))).toEqual(
      new Set([project]),
    );
    const all = await platform.graphql(LIST, { first: 100 }, tenantAdmin);
    expect(new Set(all.data!.clusterProfiles.nodes.map((n: { projectId: string }) => n.projectId))).toEqual(
      new Set([project, otherProject]),
    );
  });

  it('should show nothing of a tenant to another tenant, and refuse its writes', async () => {
    const mine = (await platform.graphql(LIST, { projectId: project, first: 1 }, editor)).data!.clusterProfiles
      .nodes[0];
    expect((await platform.graphql(GET, { id: mine.id }, stranger)).data).toEqual({ clusterProfile: null });
    expect((await platform.graphql(LIST, { projectId: project }, stranger)).data!.clusterProfiles.nodes).toEqual([]);
    expect((await platform.graphql(LIST, {}, stranger)).data!.clusterProfiles.nodes).toEqual([]);
    // A foreign id and an unknown one answer alike.
    expect((await platform.graphql(GET, { id: 'prof_unknown' }, stranger)).data).toEqual({ clusterProfile: null });
  });

  it.each([
    ['a viewer', () => viewer],
    ['a tenant admin, who writes nothing by that right', () => tenantAdmin],
  ])('should refuse a profile created by %s with FORBIDDEN', async (_who, token) => {
    const before = await count(project);
    const response = await create(seed.profileInput(project, { name: 'refused' }), token());
    expect(response.data).toBeNull();
    expect(response.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await count(project)).toBe(before);
  });

  it.each([
    ['a bad semantic version', { version: 'v1' }, 'INVALID_SEMVER', ['input', 'version']],
    ['a duplicate version', { name: 'web', version: '1.0.0' }, 'DUPLICATE_VERSION', ['input', 'version']],
    [
      'two OS layers',
      {
        layers: [
          { type: 'OS', name: 'ubuntu', version: '22.04' },
          { type: 'OS', name: 'rhel', version: '9' },
          { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4' },
        ],
      },
      'INVALID_LAYERS',
      ['input', 'layers'],
    ],
    [
      'invalid YAML values',
      {
        layers: [
          { type: 'OS', name: 'ubuntu', version: '22.04' },
          { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4', values: 'a: [1, 2\nb: }' },
        ],
      },
      'INVALID_YAML',
      ['input', 'layers', '1', 'values'],
    ],
    [
      'layers out of order',
      {
        layers: [
          { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4' },
          { type: 'OS', name: 'ubuntu', version: '22.04' },
        ],
      },
      'INVALID_LAYER_ORDER',
      ['input', 'layers', '1', 'type'],
    ],
    ['a name too long', { name: 'x'.repeat(64) }, 'INVALID_NAME', ['input', 'name']],
    [
      'values over the size limit',
      {
        layers: [
          { type: 'OS', name: 'ubuntu', version: '22.04' },
          { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4', values: `a: ${'x'.repeat(300 * 1024)}` },
        ],
      },
      'TOO_LONG',
      ['input', 'layers', '1', 'values'],
    ],
  ])('should answer %s with a userError and store nothing', async (_what, overrides, code, field) => {
    const before = await count(project);
    const response = await create(seed.profileInput(project, { name: 'web', version: '2.0.0', ...overrides }));
    expect(response.errors).toBeUndefined();
    expect(response.data!.createClusterProfile.profile).toBeNull();
    expect(response.data!.createClusterProfile.userErrors).toContainEqual(expect.objectContaining({ code, field }));
    expect(await count(project)).toBe(before);
  });

  it('should answer a request without a token with UNAUTHENTICATED', async () => {
    const response = await platform.graphql(LIST, {});
    expect(response.status).toBe(401);
    expect(response.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('should refuse an expired or forged token', async () => {
    const expired = await platform.token(
      seed.user(tenant, { [project]: 'viewer' }),
      Math.floor(Date.now() / 1000) - 60,
    ); // beyond the 30 s clock tolerance
    expect((await platform.graphql(LIST, {}, expired)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const forged = `${viewer.slice(0, viewer.lastIndexOf('.'))}.c2lnbmF0dXJl`;
    expect((await platform.graphql(LIST, {}, forged)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('should refuse a query deeper than the limit', async () => {
    const deep = `query { clusterProfiles { nodes { versions { versions { versions { versions { id } } } } } } }`;
    const response = await platform.graphql(deep, {}, viewer);
    expect(response.data ?? null).toBeNull();
    expect(response.errors?.[0]?.message).toMatch(/depth/i);
  });

  it('should refuse too many aliases, malformed GraphQL and batched requests', async () => {
    const aliases = `query { ${Array.from({ length: 16 }, (_, i) => `a${i}: clusterProfile(id: "x") { id }`).join(' ')} }`;
    expect((await platform.graphql(aliases, {}, viewer)).errors?.[0]?.message).toMatch(/alias/i);
    const malformed = await platform.graphql('query { clusterProfiles { ', {}, viewer);
    expect(malformed.data ?? null).toBeNull();
    expect(malformed.errors?.[0]?.message).toMatch(/Syntax Error/);
    const batched = await fetch(platform.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${viewer}` },
      body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }]),
    });
    expect(batched.status).toBe(400);
  });

  it('should tell a subscription posted as a query where subscriptions are served', async () => {
    const post = (body: unknown) =>
      fetch(platform.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${viewer}` },
        body: JSON.stringify(body),
      });
    const where =
      'subscriptions are served over graphql-ws on this path, or over Server-Sent Events at /graphql/stream';
    for (const query of [
      'subscription ($id: ID!) { clusterEvents(clusterId: $id) { cursor } }',
      // graphql-js 16 throws while validating this one: it must not become a 500.
      'subscription ($id: ID!, $on: Boolean!) { ... @include(if: $on) { clusterEvents(clusterId: $id) { cursor } } }',
    ]) {
      const response = await post({ query, variables: { id: 'cls_x', on: true } });
      expect(response.status).toBe(400);
      expect(((await response.json()) as any).errors).toEqual([
        { message: where, extensions: { code: 'BAD_REQUEST' } },
      ]);
    }
    // A document that also holds a subscription runs the operation it names.
    const named = await post({
      query: 'query Q { __typename } subscription S { clusterEvents(clusterId: "x") { cursor } }',
      operationName: 'Q',
    });
    expect(await named.json()).toEqual({ data: { __typename: 'Query' } });
  });

  it('should refuse an oversized or non-JSON body with a JSON error', async () => {
    const post = (body: string) =>
      fetch(platform.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${viewer}` },
        body,
      });
    const oversized = await post(
      JSON.stringify({ query: '{ __typename }', variables: { x: 'y'.repeat(2 * 1024 * 1024) } }),
    );
    expect(oversized.status).toBe(413);
    expect(((await oversized.json()) as any).errors[0].message).toMatch(/larger than/);
    const notJson = await post('{"query": ');
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as any).errors[0].extensions.code).toBe('BAD_REQUEST');
  });

  it('should refuse a bad page size and a malformed cursor as BAD_USER_INPUT', async () => {
    expect((await platform.graphql(LIST, { first: 1000 }, viewer)).errors?.[0]?.extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
    expect((await platform.graphql(LIST, { after: 'garbage' }, viewer)).errors?.[0]?.extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
  });

  it('should have the subgraph refuse a request without the internal identity header', async () => {
    const subgraph = platform.services.get('profiles')!.url;
    const response = await fetch(subgraph, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${editor}` },
      body: JSON.stringify({ query: '{ clusterProfiles { nodes { id } } }' }),
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as any).errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });
});
