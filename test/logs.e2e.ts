import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBus, createLogger, serveSubject } from '@fleetgraph/kit';
import { unzip } from '@fleetgraph/logs/testing';
import { collectLogs, logBundleChanged, resolveImage, type LogBundleMessage } from '@fleetgraph/schema';
import { createClient } from 'graphql-ws';
import { SignJWT } from 'jose';
import { connect, credsAuthenticator, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parse } from 'yaml';
import { seed, startPlatform, type Platform } from './src/index.js';

/**
 * Log bundles on the local cloud, end to end: clusters are created through the gateway and
 * provisioned on the local cloud, whose machines run the simulated agent (with its logs part);
 * bundles are requested, watched and downloaded through the gateway. With a running cluster, its
 * profile, image and bundles at hand, the suite also proves the Relay conventions: `Query.node`
 * for every Node type and `edges` on every connection.
 */
const DOWNLOAD_SECRET = 'e2e-log-download-secret-of-enough-length';

const CREATE_PROFILE = `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } userErrors { code message } } }`;
const CREATE_CLUSTER = `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id name } userErrors { field code message } } }`;
const CLUSTER = `query($id: ID!) { cluster(id: $id) { id phase nodePools { name count } logBundles { id status } } }`;
const REQUEST = `mutation($input: RequestClusterLogsInput!) { requestClusterLogs(input: $input) { bundle { id clusterId status fileName downloadUrl requestedAt } userErrors { field code message } } }`;
const BUNDLE = `query($id: ID!) { logBundle(id: $id) { id clusterId status message fileName sizeBytes downloadUrl requestedAt readyAt } }`;
const WATCH = `subscription($id: ID!) { logBundle(id: $id) { id status message fileName sizeBytes downloadUrl } }`;
/** Every Node type, with fields its owning subgraph serves (and, for a cluster, others' too). */
const NODE = `query($id: ID!) { node(id: $id) { __typename id
  ... on Cluster { name phase logBundles { id } }
  ... on ClusterProfile { name version layers { type } }
  ... on Image { os cloud imageStatus: status }
  ... on LogBundle { clusterId bundleStatus: status fileName }
  ... on ApiKey { name role projectId }
  ... on Webhook { url enabled projectId }
} }`;

async function until<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('cluster log bundles through the gateway, on the local cloud', () => {
  let platform: Platform;
  let nats: NatsConnection;
  const tenant = seed.tenant();
  const project = seed.project();
  const otherTenant = seed.tenant();
  const otherProject = seed.project();
  /** A project of the tenant that the viewer cannot read. */
  const sideProject = seed.project();
  let admin: string;
  let editor: string;
  let viewer: string;
  let stranger: string;
  let strangerAdmin: string;
  /** Every bundle status change of the tenant, in the order the logs service published them. */
  const changes: LogBundleMessage[] = [];

  beforeAll(async () => {
    platform = await startPlatform({
      localCloud: { speed: 1000, vcpuLimit: 64 },
      env: {
        LOGS_AGENT_TIMEOUT_MS: '1000',
        LOGS_MAX_CONCURRENT: '2',
        LOGS_DOWNLOAD_SECRET: DOWNLOAD_SECRET,
        RECONCILE_PROGRESS_MS: '100',
        RECONCILE_POLL_MS: '50',
        // The Relay tests' webhook points at a closed loopback port.
        WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
      },
    });
    admin = await platform.token(seed.user(tenant, { [project]: 'admin', [sideProject]: 'admin' }));
    editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
    viewer = await platform.token(seed.user(tenant, { [project]: 'viewer' }));
    stranger = await platform.token(seed.user(otherTenant, { [project]: 'admin' }, { tenantAdmin: true }));
    strangerAdmin = await platform.token(seed.user(otherTenant, { [otherProject]: 'admin' }));
    nats = await connect({
      servers: platform.natsUrl,
      authenticator: credsAuthenticator(new TextEncoder().encode(await platform.credentials('logs-e2e'))),
    });
    const sub = nats.subscribe(logBundleChanged.filter(tenant));
    void (async () => {
      for await (const msg of sub) changes.push(JSON.parse(new TextDecoder().decode(msg.data)));
    })();
    await nats.flush();
  });

  afterAll(async () => {
    await nats?.close();
    await platform?.stop();
  });

  const gql = async (query: string, variables: Record<string, unknown>, token = editor) => {
    const response = await platform.graphql(query, variables, token);
    expect(response.errors).toBeUndefined();
    return response.data!;
  };

  async function createCluster(projectId: string, token: string, workers = 2) {
    const profile = await gql(
      CREATE_PROFILE,
      { input: seed.profileInput(projectId, { name: seed.project().slice(0, 30).toLowerCase() }) },
      token,
    );
    const name = `logs-${seed.project()}`.toLowerCase().slice(0, 40);
    const created = await gql(
      CREATE_CLUSTER,
      {
        input: {
          projectId,
          name,
          profileId: profile.createClusterProfile.profile.id,
          cloud: { type: 'LOCAL', region: 'local-1' },
          nodePools: [
            { name: 'control-plane', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
            { name: 'workers', role: 'WORKER', count: workers, instanceType: 'm5.large' },
          ],
        },
      },
      token,
    );
    expect(created.createCluster.userErrors).toEqual([]);
    return created.createCluster.cluster as { id: string; name: string };
  }
  const running = (id: string, token = editor) =>
    until(`${id} RUNNING`, async () => (await gql(CLUSTER, { id }, token)).cluster?.phase === 'RUNNING');
  const request = async (clusterId: string, parts: Record<string, boolean> = {}, token = editor) =>
    (await gql(REQUEST, { input: { clusterId, ...parts } }, token)).requestClusterLogs;
  const settled = (id: string, token = editor) =>
    until(`bundle ${id} settled`, async () => {
      const bundle = (await gql(BUNDLE, { id }, token)).logBundle;
      return (bundle?.status === 'READY' || bundle?.status === 'FAILED') && bundle;
    });
  const download = async (url: string) => {
    const response = await fetch(url);
    return { response, body: Buffer.from(await response.arrayBuffer()) };
  };
  /** Watches a bundle through the gateway's graphql-ws subscription until it completes. */
  async function watch(id: string, token = editor) {
    const client = createClient({
      url: platform.gatewayUrl.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
    });
    const seen: { status: string; downloadUrl: string | null }[] = [];
    try {
      await new Promise<void>((resolve, reject) =>
        client.subscribe<{ logBundle: { status: string; downloadUrl: string | null } }>(
          { query: WATCH, variables: { id } },
          {
            next: (value) =>
              value.errors ? reject(new Error(JSON.stringify(value.errors))) : seen.push(value.data!.logBundle),
            error: reject,
            complete: resolve,
          },
        ),
      );
    } finally {
      await client.dispose();
    }
    return seen;
  }

  let main: { id: string; name: string };
  let ready: { id: string; fileName: string; downloadUrl: string; sizeBytes: number };

  it('should collect a bundle from the cluster agent, watch it to READY, download and check it', async () => {
    main = await createCluster(project, editor, 2);
    await running(main.id);
    const payload = await request(main.id);
    expect(payload.userErrors).toEqual([]);
    expect(payload.bundle).toMatchObject({ clusterId: main.id, status: 'REQUESTED', downloadUrl: null });

    const watched = await watch(payload.bundle.id);
    // The current state first, then each change, in order, ending (and completing) at READY with a link.
    const ranks = watched.map((w) => ['REQUESTED', 'COLLECTING', 'READY'].indexOf(w.status));
    expect(ranks).toEqual([...ranks].sort());
    expect(watched.at(-1)).toMatchObject({
      status: 'READY',
      downloadUrl: expect.stringMatching(/\/logs\/download\/.+\?token=/),
    });

    ready = await settled(payload.bundle.id);
    expect(ready.fileName).toMatch(new RegExp(`^${main.name}-logs-\\d{8}-\\d{6}\\.zip$`));
    // The link points at the gateway's host, which proxies it to the logs service.
    expect(new URL(ready.downloadUrl).origin).toBe(new URL(platform.gatewayUrl).origin);

    const { response, body } = await download(ready.downloadUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toContain(`attachment; filename="${ready.fileName}"`);
    expect(body.length).toBe(ready.sizeBytes);

    const root = ready.fileName.replace(/\.zip$/, '');
    const files = new Map([...(await unzip(body))].map(([name, text]) => [name.slice(root.length + 1), text]));
    const manifest = parse(files.get('Manifest.yaml')!);
    expect(manifest.cluster).toMatchObject({
      id: main.id,
      name: main.name,
      projectId: project,
      cloud: 'LOCAL',
      region: 'local-1',
    });
    // The nodes are the cluster's machines on the local cloud: one control plane, two workers.
    const nodes = manifest.resources.nodes as { name: string; role: string }[];
    expect(nodes.map((n) => n.role).sort()).toEqual(['CONTROL_PLANE', 'WORKER', 'WORKER']);
    for (const node of nodes) {
      const system = files.get(`nodes/${node.name}/system.log`)!.split('\n').filter(Boolean);
      expect(system).toHaveLength(10_000);
      expect(files.has(`nodes/${node.name}/agent.log`) && files.has(`nodes/${node.name}/cloud-init.log`)).toBe(true);
    }
    for (const section of ['customResourceDefinitions', 'deployments', 'pods', 'configMaps', 'events', 'nodes'])
      expect(manifest.resources[section].length).toBeGreaterThan(0);
    // The profile's CNI (calico) was installed by the agent: its pods and CRDs are in the bundle.
    expect(manifest.resources.customResourceDefinitions.map((c: { name: string }) => c.name)).toContain(
      'ippools.crd.projectcalico.org',
    );
    expect([...files.keys()].filter((p) => p.startsWith('kube-system/calico-node-'))).toHaveLength(3);

    const listed = await gql(CLUSTER, { id: main.id }, viewer);
    expect(listed.cluster.logBundles).toEqual([{ id: ready.id, status: 'READY' }]);
  });

  it('should refuse bad input with userErrors, and a viewer with FORBIDDEN', async () => {
    const notFound = [{ field: ['input', 'clusterId'], code: 'NOT_FOUND', message: 'no such cluster' }];
    expect(await request('cls_unknown')).toEqual({ bundle: null, userErrors: notFound });
    expect(await request(main.id, {}, stranger)).toEqual({ bundle: null, userErrors: notFound });
    expect((await request(main.id, { kubeSystem: false, namespaceLogs: false, nodeLogs: false })).userErrors).toEqual([
      {
        field: ['input'],
        code: 'NO_PART_SELECTED',
        message: 'select at least one of kubeSystem, namespaceLogs and nodeLogs',
      },
    ]);
    const refused = await platform.graphql(REQUEST, { input: { clusterId: main.id } }, viewer);
    expect(refused.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    expect((await gql(BUNDLE, { id: ready.id }, stranger)).logBundle).toBeNull();
  });

  it('should serve the archive only to a valid, unexpired link of the same tenant', async () => {
    const path = new URL(ready.downloadUrl).pathname;
    const at = (token: string | null) =>
      `${new URL(platform.gatewayUrl).origin}${path}${token === null ? '' : `?token=${token}`}`;
    const sign = (claims: { bid: string; tid: string }, exp: number) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('fleetgraph-logs')
        .setAudience('fleetgraph-log-download')
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(new TextEncoder().encode(DOWNLOAD_SECRET));
    const refused = async (url: string, status: number) => {
      const { response, body } = await download(url);
      expect(response.status).toBe(status);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(body.subarray(0, 2).toString()).not.toBe('PK');
    };
    const now = Math.floor(Date.now() / 1000);
    await refused(at(null), 403);
    await refused(at('not-a-token'), 403);
    await refused(at(await sign({ bid: ready.id, tid: tenant }, now - 5)), 403);
    await refused(at(await sign({ bid: ready.id, tid: otherTenant }, now + 60)), 404);

    // Another tenant's real link, used on this bundle's path.
    const theirs = await createCluster(otherProject, strangerAdmin, 1);
    await running(theirs.id, strangerAdmin);
    const theirBundle = await settled(
      (await request(theirs.id, { kubeSystem: false, namespaceLogs: false }, strangerAdmin)).bundle.id,
      strangerAdmin,
    );
    expect(theirBundle.status).toBe('READY');
    await refused(at(new URL(theirBundle.downloadUrl).searchParams.get('token')), 404);
    expect((await download(theirBundle.downloadUrl)).response.status).toBe(200);
  });

  it('should run one collection per cluster and two in all, queueing the rest', async () => {
    const clusters = [main, await createCluster(project, editor, 1), await createCluster(project, editor, 1)];
    for (const c of clusters.slice(1)) await running(c.id);
    const from = changes.length;
    const payloads = await Promise.all(clusters.flatMap((c) => [request(c.id), request(c.id)]));
    const ids = payloads.map((p) => p.bundle.id as string);
    const outcomes = await Promise.all(ids.map((id) => settled(id)));
    expect(outcomes.map((o) => o.status)).toEqual(ids.map(() => 'READY'));

    // Replay the published changes: never two COLLECTING in a cluster, never more than two in all.
    const state = new Map<string, LogBundleMessage>();
    let peak = 0;
    let queuedWhileCollecting = false;
    for (const change of changes.slice(from)) {
      if (!ids.includes(change.id)) continue;
      state.set(change.id, change);
      const collecting = [...state.values()].filter((b) => b.status === 'COLLECTING');
      peak = Math.max(peak, collecting.length);
      for (const c of clusters) expect(collecting.filter((b) => b.clusterId === c.id).length).toBeLessThanOrEqual(1);
      queuedWhileCollecting ||= collecting.some((b) =>
        [...state.values()].some((o) => o.clusterId === b.clusterId && o.status === 'REQUESTED'),
      );
    }
    expect(peak).toBe(2);
    expect(queuedWhileCollecting).toBe(true);
  });

  describe('Relay conventions', () => {
    const ULID = '01J9ZQ3V5X7K8M2N4P6R8T0W1Y';
    /** node(id) as the token's caller: the node, asserting that no error came with it. */
    const node = async (id: string, token: string, query = NODE) => {
      const response = await platform.graphql(query, { id }, token);
      expect(response.errors, id).toBeUndefined();
      // Where an entity resolves to null, the gateway reports it here rather than in errors.
      expect(response, id).not.toHaveProperty('extensions.valueCompletion');
      return response.data!.node as Record<string, unknown> | null;
    };
    /** Asserts node(id) is null, with every type's fields and with only its id (which no subgraph checks). */
    const expectNone = async (id: string, token: string, what = id) => {
      expect(await node(id, token), what).toBeNull();
      expect(await node(id, token, `query($id: ID!) { node(id: $id) { __typename id } }`), what).toBeNull();
    };
    let ids: Record<string, string>;
    let publicImage: string;
    let webhookId: string;

    beforeAll(async () => {
      const of = (await gql(`query($id: ID!) { cluster(id: $id) { profile { id } images { id } } }`, { id: main.id }))
        .cluster;
      // The cluster's image is the public catalogue's; an image of the tenant's own is customised.
      publicImage = of.images[0].id;
      const bus = await createBus({
        url: platform.natsUrl,
        name: 'relay-e2e',
        log: createLogger('relay-e2e', 'silent'),
        credentials: await platform.credentials('relay-e2e'),
      });
      const image = await bus
        .request(resolveImage, {
          tenantId: tenant,
          projectId: project,
          cloud: 'LOCAL',
          region: 'local-1',
          os: { type: 'OS', name: 'ubuntu', version: '22.04', ansibleRoles: ['cis-level-2'] },
          kubernetes: { type: 'KUBERNETES', name: 'kubernetes', version: '1.30.4' },
        })
        .finally(() => bus.close());
      const key = await gql(
        `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } userErrors { code } } }`,
        { input: { projectId: project, name: 'relay', role: 'VIEWER' } },
        admin,
      );
      const webhook = await gql(
        `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } userErrors { code message } } }`,
        { input: { projectId: project, url: 'http://127.0.0.1:9/relay', events: ['LOG_BUNDLE_READY'] } },
        admin,
      );
      expect(webhook.createWebhook.userErrors).toEqual([]);
      webhookId = webhook.createWebhook.webhook.id;
      ids = {
        Cluster: main.id,
        ClusterProfile: of.profile.id,
        Image: image.id,
        LogBundle: ready.id,
        ApiKey: key.createApiKey.apiKey.id,
        Webhook: webhookId,
      };
    });

    it('should answer node(id) for every Node type with the fields of the subgraph that owns it', async () => {
      expect(await node(ids.Cluster!, admin)).toEqual({
        __typename: 'Cluster',
        id: main.id,
        name: main.name,
        phase: 'RUNNING',
        logBundles: expect.arrayContaining([{ id: ready.id }]),
      });
      expect(await node(ids.ClusterProfile!, admin)).toMatchObject({
        __typename: 'ClusterProfile',
        version: '1.0.0',
        layers: [{ type: 'OS' }, { type: 'KUBERNETES' }, { type: 'CNI' }, { type: 'ADDON' }],
      });
      expect(await node(ids.Image!, admin)).toMatchObject({
        __typename: 'Image',
        id: ids.Image,
        os: 'ubuntu',
        cloud: 'LOCAL',
      });
      expect(await node(publicImage, admin)).toEqual({
        __typename: 'Image',
        id: publicImage,
        os: 'ubuntu',
        cloud: 'LOCAL',
        imageStatus: 'READY',
      });
      expect(await node(ids.LogBundle!, admin)).toEqual({
        __typename: 'LogBundle',
        id: ready.id,
        clusterId: main.id,
        bundleStatus: 'READY',
        fileName: ready.fileName,
      });
      expect(await node(ids.ApiKey!, admin)).toEqual({
        __typename: 'ApiKey',
        id: ids.ApiKey,
        name: 'relay',
        role: 'VIEWER',
        projectId: project,
      });
      expect(await node(ids.Webhook!, admin)).toEqual({
        __typename: 'Webhook',
        id: webhookId,
        url: 'http://127.0.0.1:9/relay',
        enabled: true,
        projectId: project,
      });
    });

    it("should answer null, without errors, for unknown, malformed and other tenants' or projects' ids", async () => {
      const unknown = ['cls_', 'whk_', 'prof_', 'apk_', 'img_', 'lb_'].map((prefix) => `${prefix}${ULID}`);
      const malformed = ['', 'nope', 'cls_', `usr_${ULID}`, `cls_${ULID}x`, `${main.id}.x`, 'x'.repeat(10_000)];
      for (const id of [...unknown, ...malformed]) await expectNone(id, admin);
      // Another tenant (its tenant admin, admin of a project of the same name) sees none of them,
      // but for the public catalogue's images, which every tenant reads.
      for (const [type, id] of Object.entries(ids)) await expectNone(id, stranger, type);
      expect(await node(publicImage, stranger)).toMatchObject({ __typename: 'Image', id: publicImage });
      // A profile of a project of the tenant that the caller cannot read.
      const side = await gql(CREATE_PROFILE, { input: seed.profileInput(sideProject) }, admin);
      const sideProfile = side.createClusterProfile.profile.id as string;
      expect(await node(sideProfile, admin)).toMatchObject({ __typename: 'ClusterProfile', id: sideProfile });
      await expectNone(sideProfile, editor);
    });

    it('should show a viewer what viewers may read: not API keys or webhooks', async () => {
      const seen = Object.fromEntries(
        await Promise.all(Object.entries(ids).map(async ([type, id]) => [type, (await node(id, viewer))?.__typename])),
      );
      await expectNone(ids.ApiKey!, viewer);
      await expectNone(ids.Webhook!, viewer);
      expect(seen).toEqual({
        Cluster: 'Cluster',
        ClusterProfile: 'ClusterProfile',
        Image: 'Image',
        LogBundle: 'LogBundle',
        ApiKey: undefined,
        Webhook: undefined,
      });
    });

    it('should answer null for a webhook once deleted', async () => {
      await gql(`mutation($id: ID!) { deleteWebhook(id: $id) { userErrors { code } } }`, { id: webhookId }, admin);
      await expectNone(webhookId, admin);
    });

    it('should give every connection edges whose cursors `after` continues from', async () => {
      /** A connection read whole, then again after each of its edges' cursors. */
      const check = async (
        what: string,
        read: (after: string | null) => Promise<{
          nodes: { id: string }[];
          edges: { cursor: string; node: { id: string } }[];
          pageInfo: { endCursor: string | null };
        }>,
      ) => {
        const page = await read(null);
        expect(page.nodes.length, what).toBeGreaterThanOrEqual(3);
        expect(
          page.edges.map((e) => e.node),
          what,
        ).toEqual(page.nodes);
        expect(page.edges.at(-1)!.cursor, what).toBe(page.pageInfo.endCursor);
        // After an edge's cursor come the nodes after it (a page may reach further than this one).
        for (const [i, edge] of page.edges.entries()) {
          const rest = page.nodes.slice(i + 1);
          expect((await read(edge.cursor)).nodes.slice(0, rest.length), `${what} after ${i}`).toEqual(rest);
        }
      };
      const shape = 'nodes { id } edges { cursor node { id } } pageInfo { endCursor }';
      await check('clusters', async (after) => {
        const q = `query($p: ID, $a: String) { clusters(projectId: $p, first: 100, after: $a) { ${shape} } }`;
        return (await gql(q, { p: project, a: after })).clusters;
      });
      for (const version of ['2.0.0', '2.0.1', '2.0.2'])
        await gql(CREATE_PROFILE, { input: seed.profileInput(sideProject, { version }) }, admin);
      await check('clusterProfiles', async (after) => {
        const q = `query($p: ID, $a: String) { clusterProfiles(projectId: $p, first: 100, after: $a) { ${shape} } }`;
        return (await gql(q, { p: sideProject, a: after }, admin)).clusterProfiles;
      });
      await check('Cluster.events', async (after) => {
        // Events have no id: their cursor stands in for it (and is the edge's).
        const q = `query($id: ID!, $a: String) { cluster(id: $id) { events(first: 6, after: $a) { nodes { id: cursor } edges { cursor node { id: cursor } } pageInfo { endCursor } } } }`;
        const events = (await gql(q, { id: main.id, a: after })).cluster.events;
        expect(events.edges.map((e: { cursor: string; node: { id: string } }) => e.node.id)).toEqual(
          events.edges.map((e: { cursor: string }) => e.cursor),
        );
        return events;
      });
      // A receiver that takes every delivery at once (a failed one would hold up those after it).
      const receiver = createServer((_req, res) => res.writeHead(204).end());
      await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = receiver.address() as AddressInfo;
        const hook = await gql(
          `mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }`,
          { input: { projectId: project, url: `http://127.0.0.1:${port}/`, events: ['CLUSTER_WARNING_EVENT'] } },
          admin,
        );
        const hookId = hook.createWebhook.webhook.id as string;
        for (let i = 0; i < 3; i++)
          await gql(`mutation($id: ID!) { testWebhook(id: $id) { userErrors { code } } }`, { id: hookId }, admin);
        await check('Webhook.deliveries', async (after) => {
          const q = `query($p: ID!, $a: String) { webhooks(projectId: $p) { id deliveries(first: 100, after: $a) { ${shape} } } }`;
          const hooks = (await gql(q, { p: project, a: after }, admin)).webhooks as { id: string; deliveries: never }[];
          return hooks.find((h) => h.id === hookId)!.deliveries;
        });
      } finally {
        receiver.close();
      }
    });
  });

  it('should end FAILED with a message when the agent is unreachable or does not answer', async () => {
    // No machine can start: the cluster never gets an agent.
    await platform.localCloud.setQuota(0);
    const lonely = await createCluster(project, editor, 1);
    const unreachable = await settled((await request(lonely.id)).bundle.id);
    expect(unreachable).toMatchObject({
      status: 'FAILED',
      message: `the agent of cluster ${lonely.id} is unreachable: no agent of the cluster is connected`,
      downloadUrl: null,
    });

    // An agent that hears the request and never answers.
    const deaf = nats.subscribe(serveSubject(collectLogs, { clusterId: lonely.id }));
    await nats.flush();
    const silent = await settled((await request(lonely.id)).bundle.id);
    deaf.unsubscribe();
    expect(silent).toMatchObject({
      status: 'FAILED',
      message: `the agent of cluster ${lonely.id} did not answer within 1 s`,
    });
    await platform.localCloud.setQuota(64);
  });
});
