import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { agentReportSchema } from '@fleetgraph/schema';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesObservations } from './kubernetes.js';
import { WatchingKubernetesObservations } from './kubernetes-watch.js';

const Mi = 2 ** 20;
const Ki = 1024;
const N1 = 'ip-10-0-1-10.ec2.internal';
const N2 = 'ip-10-0-2-21.ec2.internal';
const N3 = 'ip-10-0-3-33.ec2.internal';
const fixture = (name: string) => readFile(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

/**
 * A stand-in for the API server that answers with the recorded-shape fixtures (see
 * fixtures/README.md), so that the real client library's requests and parsing run.
 */
async function startApiServer(options: { metrics?: boolean; failNodeLists?: number } = {}) {
  const requests: { path: string; query: URLSearchParams; authorization?: string }[] = [];
  /** Open watches, by path: each gets the events `emit` writes, one JSON object a line, as the API server streams them. */
  const watches = new Map<string, http.ServerResponse[]>();
  let nodeListsToFail = options.failNodeLists ?? 0;
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push({ path: url.pathname, query: url.searchParams, authorization: req.headers.authorization });
    const json = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    };
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      watches.set(url.pathname, [...(watches.get(url.pathname) ?? []), res]);
      res.on('close', () =>
        watches.set(
          url.pathname,
          (watches.get(url.pathname) ?? []).filter((w) => w !== res),
        ),
      );
      return;
    }
    if (url.pathname === '/api/v1/nodes' && nodeListsToFail > 0) {
      nodeListsToFail--;
      return json(
        503,
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: 'etcdserver: leader changed',
          reason: 'ServiceUnavailable',
          code: 503,
        }),
      );
    }
    const summary = /^\/api\/v1\/nodes\/([^/]+)\/proxy\/stats\/summary$/.exec(url.pathname);
    if (url.pathname === '/api/v1/nodes') return json(200, await fixture('nodes.json'));
    if (url.pathname === '/api/v1/pods')
      return json(200, await fixture(url.searchParams.get('continue') ? 'pods-page-2.json' : 'pods-page-1.json'));
    if (url.pathname === '/api/v1/services') return json(200, await fixture('services.json'));
    if (url.pathname === '/apis/metrics.k8s.io/v1beta1/nodes') {
      if (options.metrics === false) {
        return json(
          503,
          JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            status: 'Failure',
            message: 'the server is currently unable to handle the request (get nodes.metrics.k8s.io)',
            reason: 'ServiceUnavailable',
            code: 503,
          }),
        );
      }
      return json(200, await fixture('node-metrics.json'));
    }
    if (summary && decodeURIComponent(summary[1]!) !== N2)
      return json(200, await fixture(`summary-${decodeURIComponent(summary[1]!)}.json`));
    return json(
      503,
      JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        message: 'error trying to reach service: dial tcp 10.0.2.21:10250: i/o timeout',
        reason: 'ServiceUnavailable',
        code: 503,
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      { name: 'fixture', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true },
    ],
    users: [{ name: 'agent', token: 'agent-token' }],
    contexts: [{ name: 'fixture', cluster: 'fixture', user: 'agent' }],
    currentContext: 'fixture',
  });
  return {
    kubeConfig,
    requests,
    /** How many watches of `path` are open. */
    watching: (path: string) => watches.get(path)?.length ?? 0,
    /** Streams a watch event to every open watch of `path`. */
    emit: (path: string, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: unknown) => {
      for (const watch of watches.get(path) ?? []) watch.write(`${JSON.stringify({ type, object })}\n`);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('KubernetesObservations against recorded-shape API responses', () => {
  let api: Awaited<ReturnType<typeof startApiServer>>;
  beforeAll(async () => {
    api = await startApiServer();
  });
  afterAll(() => api.close());

  it('should report nodes with role, pool, conditions, capacity, usage and scheduler-counted requests', async () => {
    const observation = await new KubernetesObservations({ kubeConfig: api.kubeConfig, pageSize: 5 }).observe();
    const byName = new Map(observation.nodes!.map((n) => [n.name, n]));
    expect([...byName.keys()]).toEqual([N1, N2, N3]);

    const controlPlane = byName.get(N1)!;
    expect(controlPlane).toMatchObject({
      role: 'CONTROL_PLANE',
      pool: 'control-plane',
      zone: 'us-east-1a',
      instanceType: 'm5.large',
      pods: 4,
    });
    expect(controlPlane.capacity).toEqual({ cpuCores: 2, memoryBytes: 7941124 * Ki, diskBytes: 83873772 * Ki });
    expect(controlPlane.allocatable).toEqual({ cpuCores: 1.93, memoryBytes: 7326724 * Ki, diskBytes: 76224326324 });
    expect(controlPlane.usage!.cpuCores).toBeCloseTo(0.18352319, 8);
    expect(controlPlane.usage).toMatchObject({ memoryBytes: 2316040 * Ki, diskBytes: 21474836480 });
    // apiserver 250m + etcd 100m/100Mi + kube-proxy (none) + calico-node 250m (its init containers request nothing)
    expect(controlPlane.requests.cpuCores).toBeCloseTo(0.6, 9);
    expect(controlPlane.requests.memoryBytes).toBe(100 * Mi);

    const pressured = byName.get(N2)!;
    expect(pressured).toMatchObject({ role: 'WORKER', pool: 'general', zone: 'us-east-1b', pods: 7 });
    expect(pressured.conditions.find((c) => c.type === 'MemoryPressure')).toEqual({
      type: 'MemoryPressure',
      status: 'TRUE',
      reason: 'KubeletHasInsufficientMemory',
      message: 'kubelet has insufficient memory available',
    });
    // coredns 2 x 100m/70Mi; prometheus 550m/1088Mi (init 10m/16Mi is smaller); web with an istio
    // sidecar 300m/384Mi; kata pod 500m/512Mi + overhead 250m/160Mi; calico-node 250m.
    expect(pressured.requests.cpuCores).toBeCloseTo(2.05, 9);
    expect(pressured.requests.memoryBytes).toBe((70 + 70 + 1088 + 384 + 672) * Mi);
    // Its kubelet did not answer: usage without disk.
    expect(pressured.usage).toMatchObject({ memoryBytes: 15011204 * Ki, diskBytes: null });

    const joining = byName.get(N3)!;
    expect(joining.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'FALSE',
      reason: 'KubeletNotReady',
    });
    // No NodeMetrics for it yet; its Pending DaemonSet pods still hold their requests; the unscheduled job counts nowhere.
    expect(joining).toMatchObject({
      usage: null,
      pods: 2,
      requests: { cpuCores: 0.25, memoryBytes: 0, diskBytes: null },
    });

    expect(observation.problems).toEqual(['kubelet stats/summary: 1 of 3 nodes did not answer']);
  });

  it('should list non-terminated pods page by page with the bearer token', async () => {
    api.requests.length = 0;
    await new KubernetesObservations({ kubeConfig: api.kubeConfig, pageSize: 5, kubeletStats: false }).observe();
    const pods = api.requests.filter((r) => r.path === '/api/v1/pods');
    expect(pods.map((r) => [r.query.get('fieldSelector'), r.query.get('limit'), r.query.get('continue')])).toEqual([
      ['status.phase!=Succeeded,status.phase!=Failed', '5', null],
      ['status.phase!=Succeeded,status.phase!=Failed', '5', expect.stringMatching(/^eyJ/)],
    ]);
    expect(new Set(api.requests.map((r) => r.authorization))).toEqual(new Set(['Bearer agent-token']));
    expect(api.requests.some((r) => r.path.endsWith('/stats/summary'))).toBe(false);
  });

  it('should report LoadBalancer and NodePort services with URLs a person can open', async () => {
    const { services } = await new KubernetesObservations({
      kubeConfig: api.kubeConfig,
      kubeletStats: false,
    }).observe();
    expect(services).toEqual([
      {
        namespace: 'monitoring',
        name: 'prometheus-server',
        type: 'LOAD_BALANCER',
        urls: ['http://a1b2c3d4e5f6a7b8-1234567890.us-east-1.elb.amazonaws.com:9090/'],
      },
      { namespace: 'ingress-nginx', name: 'ingress-nginx-controller', type: 'LOAD_BALANCER', urls: [] },
      {
        namespace: 'kubernetes-dashboard',
        name: 'kubernetes-dashboard',
        type: 'NODE_PORT',
        urls: ['https://10.0.1.10:32443/', 'https://54.210.11.21:32443/', 'https://10.0.3.33:32443/'],
      },
    ]);
  });

  it('should still report nodes and say why when metrics-server is unavailable', async () => {
    const down = await startApiServer({ metrics: false });
    try {
      const observation = await new KubernetesObservations({
        kubeConfig: down.kubeConfig,
        kubeletStats: false,
      }).observe();
      expect(observation.nodes!.map((n) => n.usage)).toEqual([null, null, null]);
      expect(observation.problems).toHaveLength(1);
      expect(observation.problems[0]).toMatch(/^metrics\.k8s\.io: /);
    } finally {
      await down.close();
    }
  });

  it('should produce nodes and services that a report accepts', async () => {
    const observation = await new KubernetesObservations({ kubeConfig: api.kubeConfig }).observe();
    const report = {
      schemaVersion: 1,
      clusterId: 'cls_1',
      tenantId: 't1',
      source: 'kubernetes',
      seq: 0,
      agentStartedAt: new Date().toISOString(),
      sentAt: new Date().toISOString(),
      intervalMs: 30_000,
      ...observation,
    };
    expect(agentReportSchema.safeParse(report).success).toBe(true);
  });
});

describe('WatchingKubernetesObservations against recorded-shape API responses and streamed watch events', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
  });

  async function started(options: Parameters<typeof startApiServer>[0] = {}, retryBaseMs = 1_000) {
    const api = await startApiServer(options);
    const observations = new WatchingKubernetesObservations({
      kubeConfig: api.kubeConfig,
      pageSize: 5,
      kubeletStats: false,
      retryBaseMs,
    });
    cleanups.push(
      () => api.close(),
      () => observations.stop(),
    );
    await observations.start();
    return { api, observations };
  }

  async function until<T>(what: string, probe: () => Promise<T | null | false>, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  const lists = (api: Awaited<ReturnType<typeof startApiServer>>, path: string) =>
    api.requests.filter((r) => r.path === path && r.query.get('watch') !== 'true');

  it("should list nodes, pods and services once, then follow their watches from the lists' resource versions", async () => {
    const { api, observations } = await started();
    const first = await observations.observe();
    expect(first.nodes!.map((n) => [n.name, n.pods])).toEqual([
      [N1, 4],
      [N2, 7],
      [N3, 2],
    ]);
    expect(first.services!.map((s) => s.name)).toEqual([
      'prometheus-server',
      'ingress-nginx-controller',
      'kubernetes-dashboard',
    ]);
    await until(
      'the three watches',
      async () => api.watching('/api/v1/nodes') + api.watching('/api/v1/pods') + api.watching('/api/v1/services') === 3,
    );
    const watchOf = (path: string) =>
      api.requests.find((r) => r.path === path && r.query.get('watch') === 'true')!.query;
    expect(watchOf('/api/v1/nodes').get('resourceVersion')).toBe('918273');
    expect([watchOf('/api/v1/pods').get('resourceVersion'), watchOf('/api/v1/pods').get('fieldSelector')]).toEqual([
      '918273',
      'status.phase!=Succeeded,status.phase!=Failed',
    ]);

    // The joining node becomes Ready, a pod of N2 finishes (out of the field selector: DELETED), the dashboard's service goes.
    const nodes = JSON.parse(await fixture('nodes.json')) as {
      items: {
        metadata: { name: string; resourceVersion: string };
        status: { conditions: { type: string; status: string; reason?: string }[] };
      }[];
    };
    const joining = nodes.items.find((n) => n.metadata.name === N3)!;
    joining.metadata.resourceVersion = '918300';
    joining.status.conditions = joining.status.conditions.map((c) =>
      c.type === 'Ready' ? { ...c, status: 'True', reason: 'KubeletReady' } : c,
    );
    api.emit('/api/v1/nodes', 'MODIFIED', joining);
    const pods = JSON.parse(await fixture('pods-page-2.json')) as {
      items: { metadata: { name: string; resourceVersion?: string } }[];
    };
    const web = pods.items.find((p) => p.metadata.name.startsWith('web-'))!;
    api.emit('/api/v1/pods', 'DELETED', { ...web, metadata: { ...web.metadata, resourceVersion: '918301' } });
    const services = JSON.parse(await fixture('services.json')) as { items: { metadata: { name: string } }[] };
    api.emit(
      '/api/v1/services',
      'DELETED',
      services.items.find((s) => s.metadata.name === 'kubernetes-dashboard'),
    );

    const after = await until('the watched changes in an observation', async () => {
      const o = await observations.observe();
      const n3 = o.nodes!.find((n) => n.name === N3)!;
      return (
        n3.conditions.find((c) => c.type === 'Ready')!.status === 'TRUE' &&
        o.nodes!.find((n) => n.name === N2)!.pods === 6 &&
        o.services!.length === 2 &&
        o
      );
    });
    // web with its istio sidecar (300m) no longer counts on N2.
    expect(after.nodes!.find((n) => n.name === N2)!.requests.cpuCores).toBeCloseTo(1.75, 9);
    // Every observation read metrics.k8s.io; nodes, pods and services were listed once (pods in two pages).
    expect(lists(api, '/api/v1/nodes')).toHaveLength(1);
    expect(lists(api, '/api/v1/pods')).toHaveLength(2);
    expect(lists(api, '/api/v1/services')).toHaveLength(1);
    expect(lists(api, '/apis/metrics.k8s.io/v1beta1/nodes').length).toBeGreaterThanOrEqual(2);
  });

  it('should report nodes as unknown, with the reason, while they cannot be listed, and list them again after a backoff', async () => {
    const { api, observations } = await started({ failNodeLists: 1 }, 200);
    const first = await observations.observe();
    expect(first.nodes).toBeNull();
    expect(first.services).not.toBeNull();
    expect(first.problems).toEqual([expect.stringMatching(/^nodes: 503 /)]);
    const back = await until('the nodes listed again', async () => (await observations.observe()).nodes);
    expect(back.map((n) => n.name)).toEqual([N1, N2, N3]);
    expect(lists(api, '/api/v1/nodes')).toHaveLength(2);
  });
});
