import { readFileSync } from 'node:fs';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { seed, startPlatform, type Platform } from './src/index.js';

type Answer = {
  /** HTTP status (graphql-ws has none). */
  status?: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- read field by field
  data?: any;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
};
type Transport = 'http' | 'graphql-ws' | 'sse';
const TRANSPORTS: Transport[] = ['http', 'graphql-ws', 'sse'];

/** The largest page of each connection, as documented in the schema. */
const MAX_EVENTS = 1000;
const MAX_LIMITS = { tokens: 1000, depth: 6, aliases: 15, directives: 50, cost: 50_000 };

const limitError = (limit: keyof typeof MAX_LIMITS, measured: number, what: string) => [
  {
    message: `Query ${what} ${measured} exceeds the limit of ${MAX_LIMITS[limit]}`,
    extensions: { code: 'QUERY_LIMIT_EXCEEDED', limit, measured, max: MAX_LIMITS[limit] },
  },
];
const ONLY_SUBSCRIPTIONS = [
  {
    message: 'only subscriptions are served here: send queries and mutations with POST /graphql',
    extensions: { code: 'BAD_USER_INPUT' },
  },
];

const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`;
const CLUSTERS_EVENTS = `{ clusters(first: 100) { nodes { events(first: ${MAX_EVENTS}) { nodes { reason } } } } }`;
const CLUSTERS_EVENTS_COST = 1 + 100 * (1 + 1 + MAX_EVENTS * 2);
/**
 * A hostile review's walk-around: lists without a page counted one element, so this cost 85, and
 * returned 20,736 profiles (1.5 MB) with 12 versions a name. A profile name has up to 500 versions
 * (MAX_VERSIONS_PER_NAME, services/profiles/src/adapters/profile.repo.ts), each counted now.
 */
const VERSIONS_OF_VERSIONS = (projectId: string) =>
  `{ clusterProfiles(projectId: ${JSON.stringify(projectId)}, first: 12) { nodes { versions { versions { versions { id name version } } } } } }`;
const VERSIONS_OF_VERSIONS_COST = 1 + 12 * (1 + 500 * (1 + 500 * (1 + 500 * 4)));
/** Every field of a cluster (as deep as it goes without cycles), with its largest page of events. */
const WHOLE_CLUSTER = (first: number) =>
  `query($id: ID!) { cluster(id: $id) { id projectId name profile { id projectId name version description cloud layers { type name version values ansibleRoles imageRef skipK8sInstall } createdAt } cloud { type region credentialRef } nodePools { name role count instanceType availabilityZones } phase conditions { type status active failed reason message code lastTransitionTime attempts } generation observedGeneration createdAt events(first: ${first}) { nodes { cursor clusterId time severity reason message object } pageInfo { hasNextPage endCursor } } availableUpdates { id projectId name version description cloud layers { type name version values ansibleRoles imageRef skipK8sInstall } createdAt } health { status lastHeartbeatAt reasons { factor message since stale } stale changedAt } usage { scope coresTotal coresUsed cpuUsage memoryTotalBytes memoryUsedBytes memoryUsage cpuRequestsCores memoryRequestsBytes diskTotalBytes diskUsedBytes diskUsage nodes observedAt stale series { time cpuCores memoryBytes } } nodes { name role pool zone instanceType conditions { type status reason message } usage { scope coresTotal coresUsed cpuUsage memoryTotalBytes memoryUsedBytes memoryUsage cpuRequestsCores memoryRequestsBytes diskTotalBytes diskUsedBytes diskUsage nodes observedAt stale series { time cpuCores memoryBytes } } pods stale observedAt } services { namespace name type urls } images { id signature os osVersion kubernetesVersion cloud region source status artifactId ansibleRoles createdAt description message log updatedAt } logBundles { id clusterId status message fileName sizeBytes downloadUrl requestedAt readyAt } } }`;

/** The same limits on every transport: POST /graphql, graphql-ws, and Server-Sent Events. */
describe('query limits on every transport', () => {
  let platform: Platform;
  const tenant = seed.tenant();
  const project = seed.project();
  let viewer: string;
  let clusterId: string;
  let ws: Client;

  beforeAll(async () => {
    platform = await startPlatform({
      localCloud: { speed: 300 },
      env: { RECONCILE_PROGRESS_MS: '100', RECONCILE_POLL_MS: '50' },
    });
    const editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
    viewer = await platform.token(seed.user(tenant, { [project]: 'viewer' }));
    const profile = await platform.graphql(
      `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } } }`,
      { input: seed.profileInput(project) },
      editor,
    );
    const cluster = await platform.graphql(
      `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } userErrors { code message } } }`,
      {
        input: {
          projectId: project,
          name: 'limits',
          profileId: profile.data!.createClusterProfile.profile.id,
          cloud: { type: 'LOCAL', region: 'local-1' },
          nodePools: [{ name: 'cp', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' }],
        },
      },
      editor,
    );
    expect(cluster.data!.createCluster.userErrors).toEqual([]);
    clusterId = cluster.data!.createCluster.cluster.id;
    ws = createClient({
      url: platform.gatewayUrl.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${viewer}` },
      retryAttempts: 0,
    });
  });

  afterAll(async () => {
    await ws?.dispose();
    await platform?.stop();
  });

  /** The first answer to an operation: its result, its errors, or (a subscription) its first event. */
  async function send(transport: Transport, query: string, variables: Record<string, unknown> = {}): Promise<Answer> {
    if (transport === 'http') {
      // As current clients ask: in application/graphql-response+json, where a refused operation is a
      // 400 (in application/json, a 200: gateway/src/graphql-over-http.test.ts).
      const response = await fetch(platform.gatewayUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json',
          authorization: `Bearer ${viewer}`,
        },
        body: JSON.stringify({ query, variables }),
      });
      return { status: response.status, ...((await response.json()) as Answer) };
    }
    if (transport === 'graphql-ws') {
      return new Promise((resolve) => {
        const stop = ws.subscribe(
          { query, variables },
          {
            next: (result) => {
              stop();
              resolve(result as Answer);
            },
            // graphql-ws ends a refused operation with its list of GraphQL errors.
            error: (errors) => resolve({ errors: errors as Answer['errors'] }),
            complete: () => resolve({}),
          },
        );
      });
    }
    const response = await fetch(`${platform.gatewayUrl}/stream`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${viewer}` },
      body: JSON.stringify({ query, variables }),
    });
    // The first `next` (a refused operation's errors, or a subscription's first event); then the client leaves.
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      text += decoder.decode(chunk.value, { stream: true });
      const next = /event: next\ndata: (.*)\n\n/.exec(text);
      if (next) {
        await reader.cancel();
        return { status: response.status, ...(JSON.parse(next[1]!) as Answer) };
      }
    }
    return { status: response.status, ...(JSON.parse(text) as Answer) };
  }

  /** What every transport answers: the errors alike, HTTP with 400 and no data. */
  async function expectRefused(
    transports: readonly Transport[],
    query: string,
    variables: Record<string, unknown>,
    errors: unknown[],
    httpStatus = 400,
  ) {
    for (const transport of transports) {
      const answer = await send(transport, query, variables);
      expect({ transport, errors: answer.errors, data: answer.data ?? null }).toEqual({
        transport,
        errors,
        data: null,
      });
      if (transport === 'http') expect(answer.status).toBe(httpStatus);
      // SSE answers errors of the operation inside the stream, as graphql-sse's client expects them.
      if (transport === 'sse') expect(answer.status).toBe(200);
    }
  }

  it.each([
    ['16 aliases', aliases(16), {}, limitError('aliases', 16, 'alias count')],
    [
      'depth 7',
      '{ clusters { nodes { profile { versions { versions { versions { id } } } } } } }',
      {},
      limitError('depth', 7, 'depth'),
    ],
    ['1,002 tokens', `{ ${'__typename '.repeat(1000)}}`, {}, limitError('tokens', 1002, 'token count')],
    [
      '51 directives',
      `{ ${'__typename @skip(if: false) '.repeat(51)}}`,
      {},
      limitError('directives', 51, 'directive count'),
    ],
    ['the cost of literal page sizes', CLUSTERS_EVENTS, {}, limitError('cost', CLUSTERS_EVENTS_COST, 'cost')],
    [
      'the cost of page sizes in variables',
      'query($n: Int, $m: Int) { clusters(first: $n) { nodes { events(first: $m) { nodes { reason } } } } }',
      { n: 100, m: MAX_EVENTS },
      limitError('cost', CLUSTERS_EVENTS_COST, 'cost'),
    ],
    [
      'the cost of page sizes in variable defaults',
      `query($n: Int = 100, $m: Int = ${MAX_EVENTS}) { clusters(first: $n) { nodes { events(first: $m) { nodes { reason } } } } }`,
      {},
      limitError('cost', CLUSTERS_EVENTS_COST, 'cost'),
    ],
  ])('should refuse %s alike over HTTP (400), graphql-ws and SSE', async (_what, query, variables, errors) => {
    await expectRefused(TRANSPORTS, query, variables, errors);
  });

  it('should refuse lists of records nested in lists of records by what their services return, on every transport', async () => {
    // Refused whatever the data holds: a cost is judged before anything runs.
    await expectRefused(
      TRANSPORTS,
      VERSIONS_OF_VERSIONS(project),
      {},
      limitError('cost', VERSIONS_OF_VERSIONS_COST, 'cost'),
    );
    // One level of versions under a page of profiles is served.
    const one = await send(
      'http',
      `{ clusterProfiles(projectId: "${project}", first: 12) { nodes { versions { id name version } } } }`,
    );
    expect([one.status, one.errors]).toEqual([200, undefined]);
    expect(one.data.clusterProfiles.nodes[0].versions.length).toBeGreaterThan(0);
  });

  it("should serve every query of the project's clients at the largest pages their fields allow", async () => {
    const manifest = JSON.parse(
      readFileSync(new URL('../client/persisted-query-manifest.json', import.meta.url), 'utf8'),
    ) as { operations: { name: string; type: string; body: string }[] };
    const queries = manifest.operations.filter((o) => o.type === 'query');
    expect(queries.map((o) => o.name)).toEqual(expect.arrayContaining(['DashboardCluster', 'DashboardFleet']));
    for (const { name, body } of queries) {
      const variables = {
        id: clusterId,
        projectId: project,
        cloud: 'LOCAL',
        region: 'local-1',
        scope: 'ALL',
        first: name === 'ClusterEvents' ? MAX_EVENTS : 100,
      };
      const answer = await send('http', body, variables);
      // Refused by no limit (a viewer may be refused a field, e.g. a project's webhooks).
      expect({ name, status: answer.status, codes: answer.errors?.map((e) => e.extensions?.code) ?? [] }).toEqual({
        name,
        status: 200,
        codes: expect.not.arrayContaining(['QUERY_LIMIT_EXCEEDED', 'BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED']),
      });
    }
  });

  it('should refuse a 63 KB subscription of 4,600 aliases by its tokens on every transport', async () => {
    const n = 4600;
    const query = `subscription($id: ID!) { clusterEvents(clusterId: $id) { ${Array.from({ length: n }, (_, i) => `a${i}: cursor`).join(' ')} } }`;
    expect(query.length).toBeGreaterThan(63_000);
    await expectRefused(TRANSPORTS, query, { id: clusterId }, limitError('tokens', 19 + 3 * n, 'token count'));
  });

  it('should refuse a subscription over a limit over graphql-ws and SSE, and serve one at the limits', async () => {
    const subscription = (n: number) =>
      `subscription($id: ID!) { clusterConditions(clusterId: $id) { ${Array.from({ length: n }, (_, i) => `a${i}: phase`).join(' ')} } }`;
    await expectRefused(
      ['graphql-ws', 'sse'],
      subscription(16),
      { id: clusterId },
      limitError('aliases', 16, 'alias count'),
    );
    for (const transport of ['graphql-ws', 'sse'] as const) {
      const answer = await send(transport, subscription(15), { id: clusterId });
      expect({ transport, errors: answer.errors }).toEqual({ transport, errors: undefined });
      expect(answer.data.clusterConditions.a14).toMatch(/^[A-Z]+$/);
    }
  });

  it('should answer a syntax error with GRAPHQL_PARSE_FAILED (HTTP 400) on every transport', async () => {
    const errors = [
      {
        message: 'Syntax Error: Expected Name, found <EOF>.',
        locations: [{ line: 1, column: 26 }],
        extensions: { code: 'GRAPHQL_PARSE_FAILED' },
      },
    ];
    await expectRefused(TRANSPORTS, '{ clusters { nodes { id }', {}, errors);
  });

  it('should serve the largest page of events in a query of every field of a cluster', async () => {
    let answer: Answer = {};
    // The cluster's first events come within moments of its creation.
    for (let i = 0; i < 100; i++) {
      answer = await send('http', WHOLE_CLUSTER(MAX_EVENTS), { id: clusterId });
      if (answer.errors || answer.data?.cluster.events.nodes.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(answer.status).toBe(200);
    expect(answer.errors).toBeUndefined();
    expect(answer.data.cluster.id).toBe(clusterId);
    expect(answer.data.cluster.events.nodes.length).toBeGreaterThan(0);
    // Within every limit on the other transports too: refused only for not being a subscription.
    await expectRefused(['graphql-ws', 'sse'], WHOLE_CLUSTER(MAX_EVENTS), { id: clusterId }, ONLY_SUBSCRIPTIONS);
  });

  it('should refuse a page over the largest with BAD_USER_INPUT, not the cost limit', async () => {
    const pageError = (field: string, value: number, max: number) => [
      {
        message: `first must be between 1 and ${max} on ${field} (got ${value})`,
        extensions: { code: 'BAD_USER_INPUT', field, argument: 'first', value, max },
      },
    ];
    await expectRefused(
      ['http'],
      WHOLE_CLUSTER(MAX_EVENTS + 1),
      { id: clusterId },
      pageError('Cluster.events', MAX_EVENTS + 1, MAX_EVENTS),
    );
    // Over the cost limit too: the page size is what is told.
    await expectRefused(
      ['http'],
      `query($n: Int) { clusters(first: $n) { nodes { events(first: ${MAX_EVENTS}) { nodes { reason } } } } }`,
      { n: 101 },
      pageError('Query.clusters', 101, 100),
    );
  });
});
