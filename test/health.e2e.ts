import { fileURLToPath } from 'node:url';
import {
  createBus,
  createLogger,
  Identity,
  INTERNAL_IDENTITY_HEADER,
  signInternalIdentity,
  type Bus,
} from '@fleetgraph/kit';
import { rawNats } from '@fleetgraph/kit/testing';
import {
  agentReport,
  clusterHealthChanged,
  simulateAgent,
  type AgentReport,
  type SimulatedFaults,
} from '@fleetgraph/schema';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { seed, startPlatform, startProcess, type Platform, type ServiceProcess } from './src/index.js';

const root = fileURLToPath(new URL('../', import.meta.url));

/**
 * Cluster health end to end: a cluster created through the gateway runs on the local cloud,
 * whose simulated agent reports every 500 ms; the health service (heartbeat timeout shortened
 * to 4 s, thresholds to 3 s) judges it, and the gateway serves it.
 */
const CREATE_PROFILE = `mutation($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } userErrors { code message } } }`;
const CREATE = `mutation($input: CreateClusterInput!) { createCluster(input: $input) { cluster { id } userErrors { field code message } } }`;
const PHASE = `query($id: ID!) { cluster(id: $id) { phase } }`;
const HEALTH = /* GraphQL */ `
  query($id: ID!, $scope: UsageScope) {
    cluster(id: $id) {
      id
      health { status lastHeartbeatAt stale reasons { factor message stale } }
      usage(scope: $scope, windowMinutes: 5) { scope coresTotal coresUsed cpuUsage memoryTotalBytes memoryUsedBytes memoryUsage cpuRequestsCores memoryRequestsBytes nodes stale series { time cpuCores memoryBytes } }
      nodes { name role pool conditions { type status message } usage { coresTotal coresUsed } stale }
      services { namespace name type urls }
    }
  }
`;

interface HealthView {
  health: {
    status: string;
    lastHeartbeatAt: string | null;
    stale: boolean;
    reasons: { factor: string; message: string; stale: boolean }[];
  };
  usage: {
    scope: string;
    coresTotal: number;
    coresUsed: number;
    cpuUsage: number;
    memoryTotalBytes: number;
    memoryUsedBytes: number;
    memoryUsage: number;
    cpuRequestsCores: number;
    memoryRequestsBytes: number;
    nodes: number;
    stale: boolean;
    series: { time: string; cpuCores: number; memoryBytes: number }[];
  };
  nodes: {
    name: string;
    role: string;
    pool: string;
    conditions: { type: string; status: string; message: string | null }[];
    usage: { coresTotal: number; coresUsed: number };
    stale: boolean;
  }[];
  services: { namespace: string; name: string; type: string; urls: string[] }[];
}

const encoder = new TextEncoder();

describe('cluster health through the gateway', () => {
  let platform: Platform;
  let bus: Bus;
  const tenant = seed.tenant();
  const project = seed.project();
  let viewer: string;
  let stranger: string;
  let clusterId: string;

  async function until<T>(
    what: string,
    probe: () => Promise<T | null | undefined | false>,
    timeoutMs = 60_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      const value = await probe().catch((error: unknown) => {
        last = error;
        return null;
      });
      if (value) return value;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
  }

  const view = async (scope?: string, token = viewer): Promise<HealthView> => {
    const response = await platform.graphql(HEALTH, { id: clusterId, scope }, token);
    expect(response.errors).toBeUndefined();
    return response.data!.cluster as HealthView;
  };
  const simulate = (faults: SimulatedFaults, reset = false) =>
    bus.request(simulateAgent, { clusterId, tenantId: tenant, faults, reset });

  /** The health service's report counters, from its /metrics. */
  async function reportCounts(): Promise<Record<string, number>> {
    const text = await (await fetch(new URL('/metrics', platform.services.get('health')!.url))).text();
    return Object.fromEntries(
      [...text.matchAll(/^fleetgraph_health_reports_total\{outcome="(\w+)"\} (\d+)/gm)].map((m) => [
        m[1]!,
        Number(m[2]),
      ]),
    );
  }

  beforeAll(async () => {
    platform = await startPlatform({
      localCloud: { speed: 400, vcpuLimit: 64 },
      env: {
        AGENT_REPORT_INTERVAL_MS: '500',
        HEALTH_HEARTBEAT_TIMEOUT: '4s',
        HEALTH_NODE_CONDITION_THRESHOLD: '3s',
        HEALTH_METRICS_WINDOW: '3s',
        HEALTH_SAMPLE_BUCKET: '5s',
        HEALTH_TICK: '100',
        HEALTH_FLUSH_INTERVAL: '200',
        HEALTH_LEADER_LEASE: '1500',
        RECONCILE_PROGRESS_MS: '100',
        RECONCILE_BACKOFF_BASE_MS: '100',
        RECONCILE_BACKOFF_CAP_MS: '500',
        RECONCILE_POLL_MS: '50',
      },
    });
    bus = await createBus({
      url: platform.natsUrl,
      name: 'health-e2e',
      log: createLogger('health-e2e', 'silent'),
      credentials: await platform.credentials('health-e2e'),
    });
    const editor = await platform.token(seed.user(tenant, { [project]: 'editor' }));
    viewer = await platform.token(seed.user(tenant, { [project]: 'viewer' }));
    stranger = await platform.token(seed.user(seed.tenant(), { [project]: 'admin' }, { tenantAdmin: true }));
    // The seed profile installs prometheus, which exposes a LoadBalancer service.
    const profile = await platform.graphql(
      CREATE_PROFILE,
      { input: seed.profileInput(project, { name: 'observed', version: '1.0.0' }) },
      editor,
    );
    const created = await platform.graphql(
      CREATE,
      {
        input: {
          projectId: project,
          name: 'watched',
          profileId: profile.data!.createClusterProfile.profile.id,
          cloud: { type: 'LOCAL', region: 'local-1' },
          nodePools: [
            { name: 'control-plane', role: 'CONTROL_PLANE', count: 1, instanceType: 't3.medium' },
            {
              name: 'workers',
              role: 'WORKER',
              count: 2,
              instanceType: 'm5.large',
              availabilityZones: ['local-1a', 'local-1b'],
            },
          ],
        },
      },
      editor,
    );
    expect(created.data?.createCluster.userErrors).toEqual([]);
    clusterId = created.data!.createCluster.cluster.id;
    await until(
      'the cluster to run',
      async () => (await platform.graphql(PHASE, { id: clusterId }, viewer)).data?.cluster?.phase === 'RUNNING',
      120_000,
    );
    // No memory pressure by chance during the test.
    await until('the agent to answer', () => simulate({ randomFaults: false }, true));
  });

  afterAll(async () => {
    await bus?.close();
    await platform?.stop();
  });

  it('should become HEALTHY, with usage, nodes and services', async () => {
    const healthy = await until('HEALTHY with prometheus exposed', async () => {
      const v = await view();
      return v.health.status === 'HEALTHY' && v.services.length > 0 && v.usage.series.length >= 2 && v;
    });
    expect(healthy.health).toMatchObject({ reasons: [], stale: false });
    expect(Date.now() - Date.parse(healthy.health.lastHeartbeatAt!)).toBeLessThan(10_000);
    expect(healthy.services).toEqual([
      {
        namespace: 'monitoring',
        name: 'prometheus-server',
        type: 'LOAD_BALANCER',
        urls: [expect.stringMatching(/^http:\/\/[\d.]+:9090\/$/)],
      },
    ]);

    // Workers by default: two m5.large of 2 vCPUs and 8 GiB.
    const workers = healthy.usage;
    expect(workers).toMatchObject({
      scope: 'WORKERS',
      coresTotal: 4,
      memoryTotalBytes: 2 * 8 * 2 ** 30,
      nodes: 2,
      stale: false,
    });
    expect(workers.coresUsed).toBeGreaterThan(0);
    expect(workers.cpuUsage).toBeCloseTo(workers.coresUsed / workers.coresTotal, 9);
    expect(workers.memoryUsage).toBeGreaterThan(0);
    expect(workers.cpuRequestsCores).toBeGreaterThan(0);
    expect(workers.memoryRequestsBytes).toBeGreaterThan(0);
    const times = workers.series.map((s) => Date.parse(s.time));
    expect(times).toEqual([...times].sort((a, b) => a - b));

    const all = (await view('ALL')).usage;
    expect(all).toMatchObject({ scope: 'ALL', coresTotal: 6, nodes: 3 });

    expect(healthy.nodes.map((n) => [n.role, n.pool]).sort()).toEqual([
      ['CONTROL_PLANE', 'control-plane'],
      ['WORKER', 'workers'],
      ['WORKER', 'workers'],
    ]);
    for (const node of healthy.nodes) {
      expect(node.conditions.map((c) => `${c.type}=${c.status}`)).toEqual([
        'Ready=TRUE',
        'MemoryPressure=FALSE',
        'DiskPressure=FALSE',
        'PIDPressure=FALSE',
        'NetworkUnavailable=FALSE',
      ]);
      expect(node.stale).toBe(false);
    }
  });

  it('should show nothing of it to another tenant', async () => {
    const response = await platform.graphql(HEALTH, { id: clusterId }, stranger);
    expect(response.data?.cluster).toBeNull();
  });

  it('should show a node under memory pressure in nodes and in the health reasons, PROGRESSING then UNHEALTHY', async () => {
    const worker = (await view()).nodes.find((n) => n.role === 'WORKER')!.name;
    await simulate({ memoryPressure: [worker] });
    const progressing = await until('PROGRESSING on memory pressure', async () => {
      const v = await view();
      return v.health.status === 'PROGRESSING' && v;
    });
    expect(progressing.health.reasons).toEqual([
      {
        factor: 'NODE_CONDITION',
        message: `node ${worker} has MemoryPressure: KubeletHasInsufficientMemory: kubelet has insufficient memory available`,
        stale: false,
      },
    ]);
    expect(
      progressing.nodes.find((n) => n.name === worker)!.conditions.find((c) => c.type === 'MemoryPressure'),
    ).toEqual({ type: 'MemoryPressure', status: 'TRUE', message: 'kubelet has insufficient memory available' });
    const unhealthy = await until('UNHEALTHY after the threshold', async () => {
      const v = await view();
      return v.health.status === 'UNHEALTHY' && v;
    });
    expect(unhealthy.health.reasons.map((r) => r.factor)).toEqual(['NODE_CONDITION']);
    await simulate({ memoryPressure: [] });
    await until('HEALTHY once the pressure is gone', async () => (await view()).health.status === 'HEALTHY');
  });

  it('should change nothing on a report with a foreign tenant or a bad shape', async () => {
    const before = await reportCounts();
    const foreign: AgentReport = {
      schemaVersion: 1,
      clusterId,
      tenantId: seed.tenant(),
      source: 'simulated',
      seq: 1_000_000,
      agentStartedAt: new Date().toISOString(),
      sentAt: new Date().toISOString(),
      intervalMs: 500,
      nodes: [
        {
          name: 'intruder',
          role: 'WORKER',
          pool: 'workers',
          zone: null,
          instanceType: null,
          conditions: [{ type: 'Ready', status: 'FALSE', reason: 'Intruded', message: 'not really' }],
          capacity: { cpuCores: 64, memoryBytes: 2 ** 40, diskBytes: null },
          allocatable: { cpuCores: 64, memoryBytes: 2 ** 40, diskBytes: null },
          usage: { cpuCores: 64, memoryBytes: 2 ** 40, diskBytes: null },
          requests: { cpuCores: 0, memoryBytes: 0, diskBytes: null },
          pods: 0,
        },
      ],
      services: [{ namespace: 'evil', name: 'phish', type: 'LOAD_BALANCER', urls: ['http://203.0.113.66/'] }],
      problems: [],
    };
    const subject = agentReport.subjectOf({ clusterId });
    // Sent raw: the bus would refuse the two malformed ones.
    const { connection } = rawNats(bus);
    connection.publish(subject, encoder.encode(JSON.stringify(foreign)));
    connection.publish(
      subject,
      encoder.encode(JSON.stringify({ ...foreign, tenantId: tenant, nodes: [{ name: 'intruder' }] })),
    );
    connection.publish(subject, encoder.encode('{"schemaVersion": 1, "clusterId"'));
    await bus.flush();
    await until('the dropped reports to be counted', async () => {
      const after = await reportCounts();
      return (
        (after.foreign_tenant ?? 0) >= (before.foreign_tenant ?? 0) + 1 &&
        (after.malformed ?? 0) >= (before.malformed ?? 0) + 2
      );
    });
    const v = await view();
    expect(v.health.status).toBe('HEALTHY');
    expect(v.nodes.map((n) => n.name)).not.toContain('intruder');
    expect(v.services.map((s) => s.name)).toEqual(['prometheus-server']);
    expect(v.usage.coresTotal).toBe(4);
  });

  it('should serve health changes as a subscription through the gateway', async () => {
    const client = createClient({
      url: platform.gatewayUrl.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${viewer}` },
    });
    const seen: { status: string; factors: string[] }[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const stop = client.subscribe<{ clusterHealth: { status: string; reasons: { factor: string }[] } }>(
          {
            query: `subscription($id: ID!) { clusterHealth(clusterId: $id) { status reasons { factor } } }`,
            variables: { id: clusterId },
          },
          {
            next: (value) => {
              if (value.errors) return reject(new Error(JSON.stringify(value.errors)));
              const { status, reasons } = value.data!.clusterHealth;
              seen.push({ status, factors: reasons.map((r) => r.factor) });
              // The current health comes first; then the workers are loaded to 99% CPU.
              if (seen.length === 1) simulate({ cpuLoad: 0.99 }).catch(reject);
              if (status === 'UNHEALTHY') {
                stop();
                resolve();
              }
            },
            error: reject,
            complete: resolve,
          },
        );
      });
      expect(seen).toEqual([
        { status: 'HEALTHY', factors: [] },
        { status: 'PROGRESSING', factors: ['METRICS'] },
        { status: 'UNHEALTHY', factors: ['METRICS'] },
      ]);
    } finally {
      await client.dispose();
      await simulate({ cpuLoad: null });
    }
    await until('HEALTHY once the load is gone', async () => (await view()).health.status === 'HEALTHY');
  });

  it("should serve the fleet's health: the cluster's now, then its changes, to readers of its project only", async () => {
    const connect = (token: string) =>
      createClient({
        url: platform.gatewayUrl.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${token}` },
      });
    const outsider = await platform.token(seed.user(tenant, { [seed.project()]: 'admin' }));
    const query = `subscription { fleetHealth { clusterId projectId status cpuUsage memoryUsage nodes cursor } }`;
    type Entry = { clusterId: string; projectId: string; status: string; cpuUsage: number | null; nodes: number };
    const client = connect(viewer);
    const other = connect(outsider);
    const foreign: Entry[] = [];
    const stopOther = other.subscribe<{ fleetHealth: Entry }>(
      { query },
      { next: (r) => void (r.data && foreign.push(r.data.fleetHealth)), error: () => {}, complete: () => {} },
    );
    const seen: Entry[] = [];
    let loadedAt = -1;
    try {
      await new Promise<void>((resolve, reject) => {
        const stop = client.subscribe<{ fleetHealth: Entry }>(
          { query },
          {
            next: (value) => {
              if (value.errors) return reject(new Error(JSON.stringify(value.errors)));
              const entry = value.data!.fleetHealth;
              seen.push(entry);
              // The current health comes first (a change of the test before may still be on its
              // way); once HEALTHY, the workers are loaded to 99% CPU.
              if (loadedAt < 0 && entry.status === 'HEALTHY') {
                loadedAt = seen.length;
                simulate({ cpuLoad: 0.99 }).catch(reject);
              } else if (loadedAt > 0 && entry.status === 'UNHEALTHY') {
                stop();
                resolve();
              }
            },
            error: reject,
            complete: resolve,
          },
        );
      });
      expect(seen[loadedAt - 1]).toMatchObject({ clusterId, projectId: project, status: 'HEALTHY', nodes: 2 });
      expect(seen[loadedAt - 1]!.cpuUsage).toBeGreaterThanOrEqual(0);
      expect(seen.slice(loadedAt).map((e) => e.status)).toContain('PROGRESSING');
      expect(seen.at(-1)!.cpuUsage).toBeGreaterThan(0.9);
      expect(seen.every((e) => e.clusterId === clusterId)).toBe(true);
      // Another project's admin in the same tenant saw none of it.
      expect(foreign.filter((e) => e.clusterId === clusterId)).toEqual([]);
    } finally {
      stopOther();
      await Promise.all([client.dispose(), other.dispose()]);
      await simulate({ cpuLoad: null });
    }
    await until('HEALTHY once the load is gone', async () => (await view()).health.status === 'HEALTHY');
  });

  it.each([
    ['WORKERS', 4, 2],
    ['ALL', 6, 3],
  ])('should stream %s usage samples as a subscription', async (scope, coresTotal, nodes) => {
    const client = createClient({
      url: platform.gatewayUrl.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${viewer}` },
    });
    try {
      const samples: { scope: string; coresTotal: number; nodes: number }[] = [];
      for await (const result of client.iterate<{ clusterMetrics: (typeof samples)[number] }>({
        query: `subscription($id: ID!, $scope: UsageScope) { clusterMetrics(clusterId: $id, scope: $scope) { scope coresTotal nodes } }`,
        variables: { id: clusterId, scope },
      })) {
        expect(result.errors).toBeUndefined();
        samples.push(result.data!.clusterMetrics);
        if (samples.length === 2) break;
      }
      expect(samples).toEqual([
        { scope, coresTotal, nodes },
        { scope, coresTotal, nodes },
      ]);
    } finally {
      await client.dispose();
    }
  });

  it('should go UNHEALTHY with factor HEARTBEAT once the agent stops, showing the rest as stale, and recover when it returns', async () => {
    await simulate({ silent: true });
    const lost = await until(
      'UNHEALTHY on heartbeat loss',
      async () => {
        const v = await view();
        return v.health.status === 'UNHEALTHY' && v;
      },
      30_000,
    );
    expect(lost.health).toMatchObject({
      stale: true,
      reasons: [
        {
          factor: 'HEARTBEAT',
          message: 'no heartbeat for longer than 4 s: node conditions and metrics are as last reported',
          stale: false,
        },
      ],
    });
    expect(lost.nodes.length).toBe(3);
    expect(lost.nodes.every((n) => n.stale)).toBe(true);
    expect(lost.usage.stale).toBe(true);
    await simulate({ silent: false });
    const back = await until('HEALTHY when heartbeats return', async () => {
      const v = await view();
      return v.health.status === 'HEALTHY' && v;
    });
    expect(back.nodes.every((n) => !n.stale)).toBe(true);
  });

  it('should answer alike from two replicas, and keep publishing changes when the one that publishes is killed', async () => {
    // A second replica on the same store and NATS (every replica takes every report).
    const second: ServiceProcess = await startProcess('health-2', `${root}services/health/dist/main.js`, {
      ...(await platform.envFor('health-2')),
      PORT: '0',
    });
    const identity = new Identity({ sub: 'replica-check', tenantId: tenant, projects: { [project]: 'viewer' } });
    const statusAt = async (replica: ServiceProcess): Promise<string> => {
      const response = await fetch(new URL('/graphql', replica.url), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [INTERNAL_IDENTITY_HEADER]: await signInternalIdentity(identity, platform.env.INTERNAL_AUTH_SECRET!),
        },
        body: JSON.stringify({
          query: 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Cluster { health { status } } } }',
          variables: { r: [{ __typename: 'Cluster', id: clusterId }] },
        }),
      });
      const body = (await response.json()) as { data?: { _entities: { health: { status: string } }[] } };
      return body.data?._entities[0]?.health.status ?? `no answer: ${JSON.stringify(body)}`;
    };
    try {
      const first = platform.services.get('health')!;
      await until('both replicas to judge the cluster HEALTHY', async () => {
        const [a, b] = await Promise.all([statusAt(first), statusAt(second)]);
        return a === 'HEALTHY' && b === 'HEALTHY';
      });
      // Through a change and back, both answer the same at every look (a status seen on one is
      // seen on the other within one report).
      const worker = (await view()).nodes.find((n) => n.role === 'WORKER')!.name;
      await simulate({ memoryPressure: [worker] });
      for (let i = 0; i < 10; i++) {
        const [a, b] = await Promise.all([statusAt(first), statusAt(second)]);
        if (a !== b) {
          await new Promise((r) => setTimeout(r, 600));
          const [c, d] = await Promise.all([statusAt(first), statusAt(second)]);
          expect([c, d], 'replicas disagree beyond one report').toEqual([c, c]);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      await simulate({ memoryPressure: [] });
      await until(
        'HEALTHY again on both',
        async () => (await statusAt(first)) === 'HEALTHY' && (await statusAt(second)) === 'HEALTHY',
      );

      // The first replica held the role (it started first): it dies; the second publishes from then on.
      const changes: string[] = [];
      const following = await bus.consume(clusterHealthChanged, {
        durable: `replica-check-${Date.now()}`,
        deliver: 'new',
        filter: clusterHealthChanged.filter(tenant, clusterId),
        handle: async (d) => void changes.push(d.payload.status),
      });
      first.child.kill('SIGKILL');
      await simulate({ silent: true });
      await until(
        'the change published by the surviving replica',
        async () => changes.includes('UNHEALTHY') || changes.includes('PROGRESSING'),
        30_000,
      );
      expect(await statusAt(second)).not.toBe('HEALTHY');
      await following.stop();
      await simulate({ silent: false });
    } finally {
      await second.stop();
    }
  });
});
