import { serveSubject } from '@fleetgraph/kit';
import { unzip } from '@fleetgraph/logs/testing';
import { collectLogs, logBundleChanged, type LogBundleMessage } from '@fleetgraph/schema';
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
 * bundles are requested, watched and downloaded through the gateway.
 */
const DOWNLOAD_SECRET = 'e2e-log-download-secret-of-enough-length';

const CREATE_PROFILE = `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } userErrors { code message } } }`;
const CREATE_CLUSTER = `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id name } userErrors { field code message } } }`;
const CLUSTER = `query($id: ID!) { cluster(id: $id) { id phase nodePools { name count } logBundles { id status } } }`;
const REQUEST = `mutation($input: RequestClusterLogsInput!) { requestClusterLogs(input: $input) { bundle { id clusterId status fileName downloadUrl requestedAt } userErrors { field code message } } }`;
const BUNDLE = `query($id: ID!) { logBundle(id: $id) { id clusterId status message fileName sizeBytes downloadUrl requestedAt readyAt } }`;
const WATCH = `subscription($id: ID!) { logBundle(id: $id) { id status message fileName sizeBytes downloadUrl } }`;

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
      },
    });
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
