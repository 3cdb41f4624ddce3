import { createRequire } from 'node:module';
import { serveSubject } from '@fleetgraph/kit';
import { rawNats } from '@fleetgraph/kit/testing';
import {
  collectLogs,
  logBundleChanged,
  MANIFEST_KINDS,
  NODE_LOG_FILES,
  PLATFORM_NAMESPACE,
  type LogBundleMessage,
} from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { clusterNodes, startHarness, unzip, until, type Harness } from './testing.js';

// Vite resolves `graphql` to its ESM build, while type-graphql and @apollo/subgraph, loaded by
// Node, get the CommonJS one: one instance for everything here, the one Node loads.
vi.mock('graphql', () => createRequire(import.meta.url)('graphql'));

const REQUEST = /* GraphQL */ `
  mutation Request($input: RequestClusterLogsInput!) {
    requestClusterLogs(input: $input) {
      bundle { id clusterId status message fileName sizeBytes downloadUrl requestedAt readyAt }
      userErrors { field code message }
    }
  }
`;
const GET = /* GraphQL */ `
  query Get($id: ID!) { logBundle(id: $id) { id clusterId status message fileName sizeBytes downloadUrl requestedAt readyAt } }
`;
const CLUSTER_BUNDLES = /* GraphQL */ `
  query Bundles($id: ID!) { _entities(representations: [{ __typename: "Cluster", id: $id }]) { ... on Cluster { logBundles { id status } } } }
`;

describe('log bundles against a real nats-server and simulated agents', () => {
  let h: Harness;
  const editor = () => h.identity({ tenantId: 'tenant-a', projects: { 'project-a': 'editor' } });
  const viewer = () => h.identity({ tenantId: 'tenant-a', projects: { 'project-a': 'viewer' } });
  const events: LogBundleMessage[] = [];

  beforeAll(async () => {
    h = await startHarness();
    await h.bus.consume(logBundleChanged, {
      durable: 'test-events',
      filter: logBundleChanged.filter('tenant-a'),
      handle: async ({ payload }) => void events.push(payload),
    });
  });

  afterAll(async () => {
    await h?.stop();
  });

  const request = async (clusterId: string, parts: Record<string, boolean> = {}, identity = editor()) => {
    const result = await h.gql(identity, REQUEST, { input: { clusterId, ...parts } });
    expect(result.errors).toBeUndefined();
    return result.data!.requestClusterLogs;
  };
  const settled = (id: string, identity = editor()) =>
    until(`bundle ${id} settled`, async () => {
      const bundle = (await h.gql(identity, GET, { id })).data?.logBundle;
      return (bundle?.status === 'READY' || bundle?.status === 'FAILED') && bundle;
    });
  const download = async (url: string) => {
    const response = await fetch(url);
    return { response, body: Buffer.from(await response.arrayBuffer()) };
  };

  it('should collect a bundle: REQUESTED at once, then COLLECTING, then READY with a downloadable archive', async () => {
    const cluster = h.addCluster({ name: 'web-prod' });
    await h.startAgent(cluster, { nodes: clusterNodes('web-prod', 2), logs: { kubernetesVersion: 'v1.30.4' } });

    const payload = await request(cluster.id);
    expect(payload.userErrors).toEqual([]);
    expect(payload.bundle).toMatchObject({
      clusterId: cluster.id,
      status: 'REQUESTED',
      downloadUrl: null,
      readyAt: null,
    });

    const bundle = await settled(payload.bundle.id);
    expect(bundle).toMatchObject({ status: 'READY', message: null });
    expect(bundle.fileName).toMatch(/^web-prod-logs-\d{8}-\d{6}\.zip$/);
    expect(bundle.downloadUrl).toMatch(
      new RegExp(`^${h.origin}/logs/download/${bundle.id}/${bundle.fileName}\\?token=`),
    );

    await until('the READY event', async () => events.some((e) => e.id === bundle.id && e.status === 'READY'));
    expect(events.filter((e) => e.id === bundle.id).map((e) => e.status)).toEqual([
      'REQUESTED',
      'COLLECTING',
      'COLLECTING',
      'READY',
    ]);
    const ready = events.find((e) => e.id === bundle.id && e.status === 'READY')!;
    expect(ready).toMatchObject({
      tenantId: 'tenant-a',
      projectId: 'project-a',
      fileName: bundle.fileName,
      sizeBytes: bundle.sizeBytes,
    });
    expect(ready.downloadUrl).toMatch(/\?token=/);

    const { response, body } = await download(bundle.downloadUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/zip');
    expect(response.headers.get('content-disposition')).toBe(
      `attachment; filename="${bundle.fileName}"; filename*=UTF-8''${bundle.fileName}`,
    );
    expect(body.length).toBe(bundle.sizeBytes);

    const entries = await unzip(body);
    const root = bundle.fileName.replace(/\.zip$/, '');
    expect([...entries.keys()].every((name) => name.startsWith(`${root}/`))).toBe(true);
    const files = new Map([...entries].map(([name, text]) => [name.slice(root.length + 1), text]));

    // A folder per part and per node.
    const folders = new Set([...files.keys()].map((p) => p.split('/')[0]));
    expect(folders).toEqual(new Set(['Manifest.yaml', 'kube-system', PLATFORM_NAMESPACE, 'nodes']));
    const nodeNames = ['web-prod-cp-0', 'web-prod-worker-0', 'web-prod-worker-1'];
    for (const node of nodeNames) {
      for (const file of NODE_LOG_FILES) expect(files.has(`nodes/${node}/${file}`)).toBe(true);
    }

    // Node logs: the last 10,000 lines of each (the simulated system journal has 15,000).
    const system = files.get('nodes/web-prod-worker-0/system.log')!.split('\n').filter(Boolean);
    expect(system).toHaveLength(10_000);
    expect(system[0]).toMatch(/ seq=5001$/);
    expect(system.at(-1)).toMatch(/ seq=15000$/);
    for (const [path, text] of files) {
      if (path.startsWith('nodes/')) expect(text.split('\n').filter(Boolean).length).toBeLessThanOrEqual(10_000);
    }
    expect(files.get('nodes/web-prod-worker-0/cloud-init.log')!.split('\n').filter(Boolean)).toHaveLength(800);

    // The manifest describes what the archive holds.
    const manifest = parse(files.get('Manifest.yaml')!);
    expect(manifest).toMatchObject({
      apiVersion: 'fleetgraph.dev/v1',
      kind: 'LogBundleManifest',
      bundle: {
        id: bundle.id,
        fileName: bundle.fileName,
        parts: { kubeSystem: true, namespaceLogs: true, nodeLogs: true },
        limits: { tailLines: 10_000 },
      },
      cluster: { id: cluster.id, name: 'web-prod', projectId: 'project-a', cloud: 'LOCAL', region: 'local-1' },
    });
    expect(Object.keys(manifest.resources)).toEqual([
      'customResourceDefinitions',
      'deployments',
      'pods',
      'configMaps',
      'events',
      'nodes',
    ]);
    expect(MANIFEST_KINDS).toHaveLength(6);
    expect(manifest.resources.nodes.map((n: { name: string }) => n.name)).toEqual(nodeNames);
    expect(manifest.resources.nodes[0]).toMatchObject({
      role: 'CONTROL_PLANE',
      kubeletVersion: 'v1.30.4',
      ready: true,
    });
    // Every pod log in the archive belongs to a pod of the manifest, and every such pod has its logs.
    const podLogs = [...files.keys()].filter(
      (p) => p.startsWith('kube-system/') || p.startsWith(`${PLATFORM_NAMESPACE}/`),
    );
    const pods = manifest.resources.pods.filter(
      (p: { namespace: string }) => p.namespace === 'kube-system' || p.namespace === PLATFORM_NAMESPACE,
    );
    expect(new Set(podLogs)).toEqual(
      new Set(
        pods.flatMap((p: { namespace: string; name: string; containers: string[] }) =>
          p.containers.map((c) => `${p.namespace}/${p.name}/${c}.log`),
        ),
      ),
    );
    expect(pods.some((p: { name: string }) => p.name === 'kube-apiserver-web-prod-cp-0')).toBe(true);
    expect(manifest.resources.pods.every((p: { node: string }) => nodeNames.includes(p.node))).toBe(true);
    expect(manifest.resources.configMaps.length).toBeGreaterThan(0);
    expect(manifest.resources.events.length).toBeGreaterThanOrEqual(nodeNames.length);
    expect(manifest.resources.customResourceDefinitions.map((c: { name: string }) => c.name)).toContain(
      'clusterpacks.fleetgraph.dev',
    );
    // The files index matches the entries.
    expect(manifest.files.map((f: { path: string }) => f.path).sort()).toEqual(
      [...files.keys()].filter((p) => p !== 'Manifest.yaml').sort(),
    );
    const indexed = manifest.files.find((f: { path: string }) => f.path === 'nodes/web-prod-worker-0/system.log');
    expect(indexed).toEqual({
      path: 'nodes/web-prod-worker-0/system.log',
      lines: 10_000,
      bytes: Buffer.byteLength(files.get('nodes/web-prod-worker-0/system.log')!),
    });

    // Namespace logs: the last hour only (the simulated logs reach two hours back).
    const since = Date.parse(manifest.bundle.limits.namespaceSince);
    const agentLog = [...files]
      .find(([p]) => p.startsWith(`${PLATFORM_NAMESPACE}/fleetgraph-agent-`))![1]
      .split('\n')
      .filter(Boolean);
    expect(agentLog.length).toBeGreaterThan(0);
    expect(agentLog.length).toBeLessThan(3_000);
    expect(agentLog.every((line) => Date.parse(line.split(' ')[0]!) >= since)).toBe(true);
  });

  it('should collect only the parts selected', async () => {
    const cluster = h.addCluster();
    await h.startAgent(cluster);
    const bundle = await settled((await request(cluster.id, { kubeSystem: false, namespaceLogs: false })).bundle.id);
    expect(bundle.status).toBe('READY');
    const entries = await unzip((await download(bundle.downloadUrl)).body);
    const folders = new Set([...entries.keys()].map((name) => name.split('/')[1]));
    expect(folders).toEqual(new Set(['Manifest.yaml', 'nodes']));
  });

  it('should end FAILED with a message when no agent of the cluster is connected', async () => {
    const cluster = h.addCluster();
    const bundle = await settled((await request(cluster.id)).bundle.id);
    expect(bundle).toMatchObject({ status: 'FAILED', fileName: null, downloadUrl: null });
    expect(bundle.message).toBe(
      `the agent of cluster ${cluster.id} is unreachable: no agent of the cluster is connected`,
    );
  });

  it('should end FAILED with a message when the agent does not answer', async () => {
    const cluster = h.addCluster();
    // An agent that hears the request and never answers.
    const silent = rawNats(h.bus).connection.subscribe(serveSubject(collectLogs, { clusterId: cluster.id }), {
      callback: () => {},
    });
    await h.bus.flush();
    const bundle = await settled((await request(cluster.id)).bundle.id);
    silent.unsubscribe();
    expect(bundle).toMatchObject({
      status: 'FAILED',
      message: `the agent of cluster ${cluster.id} did not answer within 1 s`,
    });
  });

  it('should end FAILED with a message when the agent accepts and then sends nothing', async () => {
    const cluster = h.addCluster();
    const mute = rawNats(h.bus).connection.subscribe(serveSubject(collectLogs, { clusterId: cluster.id }), {
      callback: (_err, msg) =>
        msg.respond(new TextEncoder().encode(JSON.stringify({ ok: true, data: { accepted: true, nodes: 3 } }))),
    });
    await h.bus.flush();
    const bundle = await settled((await request(cluster.id)).bundle.id);
    mute.unsubscribe();
    expect(bundle).toMatchObject({ status: 'FAILED', message: 'the agent stopped sending logs: nothing for 2 s' });
  });

  it('should refuse bad input with userErrors and change nothing', async () => {
    const foreign = h.addCluster({ tenantId: 'tenant-b', projectId: 'project-a' });
    const mine = h.addCluster();
    const notFound = { field: ['input', 'clusterId'], code: 'NOT_FOUND', message: 'no such cluster' };
    expect(await request('cls-unknown')).toEqual({ bundle: null, userErrors: [notFound] });
    expect(await request(foreign.id)).toEqual({ bundle: null, userErrors: [notFound] });
    // A user of the tenant without a role in the cluster's project cannot tell it exists either.
    expect(await request(mine.id, {}, h.identity({ tenantId: 'tenant-a', projects: { other: 'admin' } }))).toEqual({
      bundle: null,
      userErrors: [notFound],
    });
    expect(await request(mine.id, { kubeSystem: false, namespaceLogs: false, nodeLogs: false })).toEqual({
      bundle: null,
      userErrors: [
        {
          field: ['input'],
          code: 'NO_PART_SELECTED',
          message: 'select at least one of kubeSystem, namespaceLogs and nodeLogs',
        },
      ],
    });
    const deleted = h.addCluster({ phase: 'DELETED' });
    expect((await request(deleted.id)).userErrors).toEqual([
      { field: ['input', 'clusterId'], code: 'CLUSTER_DELETED', message: 'the cluster is deleted' },
    ]);
    expect((await h.gql(editor(), CLUSTER_BUNDLES, { id: mine.id })).data).toEqual({ _entities: [{ logBundles: [] }] });
  });

  it('should refuse a viewer with FORBIDDEN', async () => {
    const cluster = h.addCluster();
    const result = await h.gql(viewer(), REQUEST, { input: { clusterId: cluster.id } });
    expect(result.data).toBeNull();
    expect(result.errors?.map((e) => [e.message, e.extensions?.code])).toEqual([
      ["collecting logs needs the editor or admin role in the cluster's project", 'FORBIDDEN'],
    ]);
  });

  it("should list a cluster's bundles newest first, to those who may read them", async () => {
    const cluster = h.addCluster();
    await h.startAgent(cluster);
    const first = (await request(cluster.id, { kubeSystem: false, namespaceLogs: false })).bundle.id;
    await settled(first);
    const second = (await request(cluster.id, { nodeLogs: false })).bundle.id;
    await settled(second);
    const listed = await h.gql(viewer(), CLUSTER_BUNDLES, { id: cluster.id });
    expect(listed).toEqual({
      data: {
        _entities: [
          {
            logBundles: [
              { id: second, status: 'READY' },
              { id: first, status: 'READY' },
            ],
          },
        ],
      },
    });
    expect((await h.gql(viewer(), GET, { id: first })).data?.logBundle.downloadUrl).toMatch(/token=/);
    const stranger = h.identity({ tenantId: 'tenant-b', tenantAdmin: true });
    expect(await h.gql(stranger, CLUSTER_BUNDLES, { id: cluster.id })).toEqual({
      data: { _entities: [{ logBundles: [] }] },
    });
    expect(await h.gql(stranger, GET, { id: first })).toEqual({ data: { logBundle: null } });
    // An unknown id, an empty one included, answers like a foreign one.
    for (const id of ['lb-unknown', ''])
      expect(await h.gql(viewer(), GET, { id })).toEqual({ data: { logBundle: null } });
  });

  describe('download authorisation', () => {
    let bundle: { id: string; fileName: string; downloadUrl: string };
    let otherTenants: { id: string; fileName: string; downloadUrl: string };

    beforeAll(async () => {
      const cluster = h.addCluster();
      await h.startAgent(cluster);
      bundle = await settled((await request(cluster.id, { kubeSystem: false, namespaceLogs: false })).bundle.id);
      const foreign = h.addCluster({ tenantId: 'tenant-b', projectId: 'project-b' });
      await h.startAgent(foreign);
      const theirs = h.identity({ tenantId: 'tenant-b', projects: { 'project-b': 'admin' } });
      otherTenants = await settled(
        (await request(foreign.id, { kubeSystem: false, namespaceLogs: false }, theirs)).bundle.id,
        theirs,
      );
    });

    const tokenOf = (url: string) => new URL(url).searchParams.get('token')!;
    const urlWith = (b: { id: string; fileName: string }, token: string | null) =>
      `${h.origin}/logs/download/${b.id}/${b.fileName}${token === null ? '' : `?token=${encodeURIComponent(token)}`}`;
    const expectRefused = async (url: string, status: number, error: string) => {
      const { response, body } = await download(url);
      expect([response.status, response.headers.get('content-type'), JSON.parse(body.toString())]).toEqual([
        status,
        'application/json; charset=utf-8',
        { error },
      ]);
      expect(body.subarray(0, 2).toString()).not.toBe('PK');
    };

    it('should stream the archive to a valid link', async () => {
      const { response, body } = await download(bundle.downloadUrl);
      expect(response.status).toBe(200);
      expect(body.subarray(0, 2).toString()).toBe('PK');
    });

    it('should refuse a missing, malformed or tampered token with 403', async () => {
      await expectRefused(urlWith(bundle, null), 403, 'the download link is not valid');
      await expectRefused(urlWith(bundle, 'not-a-token'), 403, 'the download link is not valid');
      const [head, payload, signature] = tokenOf(bundle.downloadUrl).split('.');
      const flipped = signature!.slice(0, -2) + (signature!.at(-2) === 'A' ? 'B' : 'A') + signature!.at(-1);
      await expectRefused(urlWith(bundle, `${head}.${payload}.${flipped}`), 403, 'the download link is not valid');
    });

    it('should refuse an expired token with 403', async () => {
      const expired = await h.service.links.sign(
        { bundleId: bundle.id, tenantId: 'tenant-a' },
        new Date(Date.now() - 1_000),
        new Date(Date.now() - 60_000),
      );
      await expectRefused(urlWith(bundle, expired), 403, 'the download link has expired');
    });

    it("should refuse another tenant's token with 404", async () => {
      // Their valid link, used on our bundle's path.
      await expectRefused(urlWith(bundle, tokenOf(otherTenants.downloadUrl)), 404, 'no such log bundle');
      // A token naming our bundle but their tenant.
      const crossed = await h.service.links.sign(
        { bundleId: bundle.id, tenantId: 'tenant-b' },
        new Date(Date.now() + 60_000),
      );
      await expectRefused(urlWith(bundle, crossed), 404, 'no such log bundle');
      // Our token, on another file name.
      await expectRefused(
        urlWith({ ...bundle, fileName: 'other.zip' }, tokenOf(bundle.downloadUrl)),
        404,
        'no such log bundle',
      );
    });
  });
});
