import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, SimulatedSource, type RunningAgent } from '@fleetgraph/agent';
import type { Machine } from '@fleetgraph/clouds';
import {
  BusError,
  createBus,
  createLogger,
  createOutbox,
  createSqliteStore,
  type Bus,
  type Outbox,
  type Store,
} from '@fleetgraph/kit';
import { startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { FIRST_SEED_IMAGE, localCloudAdmin, startLocalCloud, type LocalCloud } from '@fleetgraph/local-cloud';
import {
  CLUSTER_EVENTS_STREAM,
  CLUSTER_STATE_STREAM,
  clusterConditions,
  clusterEvent,
  clusterLifecycle,
  clusterNodes,
  fleetCluster,
  getProfile,
  resolveImage,
  type ProfileMessage,
} from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterRepository } from '../adapters/cluster.repo.js';
import { natsClusterRequests } from '../adapters/cluster.requests.js';
import { ProviderRegistry } from '../adapters/providers.js';
import type { ClusterSpec, NodePool } from '../domain/cluster.js';
import { Orchestrator } from './orchestrator.js';

/**
 * The orchestrator against a real nats-server and a real local cloud (in process, at high
 * speed). The profiles and images services are stood in for by NATS responders here; the
 * end-to-end suite under test/ runs the real ones through the gateway.
 */
const log = createLogger('orchestrator-test', 'silent');
const tenantId = 't1';
const projectId = 'p1';

const profile = (id: string, version = '1.0.0', k8s = '1.30.4'): ProfileMessage => ({
  id,
  tenantId,
  projectId,
  name: 'base',
  version,
  description: null,
  cloud: 'LOCAL',
  createdAt: new Date().toISOString(),
  layers: [
    { type: 'OS', name: 'ubuntu', version: '22.04' },
    { type: 'KUBERNETES', name: 'kubernetes', version: k8s },
    { type: 'CNI', name: 'calico', version: '3.28.0' },
    { type: 'ADDON', name: 'prometheus', version: version },
  ],
});

describe('orchestrator on the local cloud', () => {
  let nats: NatsServer;
  let cloud: LocalCloud;
  let bus: Bus;
  let doubles: Bus;
  let store: Store;
  let repo: ClusterRepository;
  let providers: ProviderRegistry;
  let orchestrator: Orchestrator;
  let outbox: Outbox;
  let dataDir: string;
  const agents = new Map<string, RunningAgent>();
  const profiles = new Map([profile('prof-1'), profile('prof-2', '1.1.0')].map((p) => [p.id, p]));
  let serial = 0;

  const newOrchestrator = (leaseMs = 60_000) =>
    new Orchestrator({
      repo,
      providers,
      requests: natsClusterRequests(bus),
      log,
      pollMs: 20,
      progressMs: 50,
      resyncMs: 500,
      backoff: { baseMs: 50, capMs: 400 },
      leaseMs,
      concurrency: 8,
    });

  beforeAll(async () => {
    nats = await startNatsServer();
    dataDir = await mkdtemp(join(tmpdir(), 'orchestrator-test-'));
    cloud = await startLocalCloud({ dataDir, speed: 2000, vcpuLimit: 64 });
    bus = await createBus({ url: nats.url, name: 'clusters', log, credentials: await nats.credentials('clusters') });
    await bus.ensureStreams([CLUSTER_EVENTS_STREAM, CLUSTER_STATE_STREAM]);
    doubles = await createBus({ url: nats.url, name: 'doubles', log, credentials: await nats.credentials('doubles') });
    doubles.serve(getProfile, async ({ id }) => {
      const p = profiles.get(id);
      if (!p) throw new BusError('NOT_FOUND', 'no such profile');
      return p;
    });
    // Stands in for the images service: the seed image, resolved at once.
    doubles.serve(resolveImage, async (r) => ({
      id: `img-${r.kubernetes.version}`,
      tenantId: 'public',
      signature: 'sig',
      os: 'ubuntu',
      osVersion: '22.04',
      kubernetesVersion: r.kubernetes.version,
      cloud: 'LOCAL' as const,
      region: r.region,
      source: 'OUT_OF_BOX' as const,
      status: 'READY' as const,
      artifactId: FIRST_SEED_IMAGE.id,
      ansibleRoles: [],
      message: null,
      createdAt: new Date().toISOString(),
    }));
    // Stands in for the health service: every running machine's node is Ready.
    doubles.serve(clusterNodes, async ({ clusterId }) => ({
      observedAt: new Date().toISOString(),
      nodes: (await providers.get('LOCAL', 'local-1').describeMachines({ clusterId, region: 'local-1' }))
        .filter((m) => m.state === 'running')
        .map((m) => ({ name: m.name, ready: true })),
    }));
    store = createSqliteStore({ file: join(dataDir, 'clusters.sqlite') });
    outbox = await createOutbox({
      store,
      bus,
      log,
      events: [clusterEvent, clusterConditions, clusterLifecycle, fleetCluster],
      pollMs: 50,
    });
    repo = await ClusterRepository.open(store, outbox);
    outbox.start();
    providers = new ProviderRegistry({ localCloudUrl: cloud.url });
    orchestrator = newOrchestrator();
    orchestrator.start();
  });

  afterAll(async () => {
    await orchestrator?.stop();
    await outbox?.stop();
    for (const agent of agents.values()) await agent.stop();
    await bus?.close();
    await doubles?.close();
    await providers?.close();
    await store?.close();
    await cloud?.close();
    await nats?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const pools = (workers: Partial<NodePool> = {}): NodePool[] => [
    {
      name: 'control-plane',
      role: 'CONTROL_PLANE',
      count: 1,
      instanceType: 't3.medium',
      availabilityZones: ['local-1a'],
    },
    {
      name: 'workers',
      role: 'WORKER',
      count: 2,
      instanceType: 'm5.large',
      availabilityZones: ['local-1a', 'local-1b'],
      ...workers,
    },
  ];

  async function createCluster(nodePools = pools(), profileId = 'prof-1'): Promise<ClusterSpec> {
    const spec: ClusterSpec = {
      id: `cls-${++serial}`,
      tenantId,
      projectId,
      name: `c${serial}`,
      profileId,
      cloud: { type: 'LOCAL', region: 'local-1', credentialRef: null },
      nodePools,
      generation: 1,
      deletionRequested: false,
      createdAt: new Date().toISOString(),
    };
    agents.set(
      spec.id,
      startAgent({ bus: doubles, log, clusterId: spec.id, tenantId, source: new SimulatedSource({ speed: 5000 }) }),
    );
    await repo.create(spec, new Date());
    orchestrator.poke();
    return spec;
  }

  const change = async (id: string, f: (s: ClusterSpec) => ClusterSpec) => {
    await repo.updateSpec(id, f, { now: new Date() });
    orchestrator.poke();
  };

  async function until<T>(
    what: string,
    probe: () => Promise<T | undefined | null | false>,
    timeoutMs = 20_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      last = await probe();
      if (last) return last as T;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  const converged = (id: string) =>
    until(`${id} to converge`, async () => {
      const [status, stored] = await Promise.all([repo.getStatus(id), repo.getSpec(id)]);
      return status?.phase === 'RUNNING' && status.observedGeneration === stored?.spec.generation && status;
    });

  /** The cluster's stored events once the outbox has published everything written so far. */
  const eventsOf = async (id: string) => {
    await until('the outbox to drain', async () => (await outbox.pending()) === 0);
    return (await repo.listEvents(id, { first: 1000 })).nodes;
  };

  const machines = async (id: string): Promise<Machine[]> =>
    (await providers.get('LOCAL', 'local-1').describeMachines({ clusterId: id, region: 'local-1' })).filter(
      (m) => m.state !== 'terminating',
    );

  it('should provision a cluster through every milestone to RUNNING', async () => {
    const spec = await createCluster();
    const status = await converged(spec.id);
    expect(status.conditions.map((c) => [c.type, c.status, c.failed])).toEqual([
      ['Customizing Image', 'TRUE', false],
      ['Creating Infrastructure', 'TRUE', false],
      ['Adding Control Plane Node', 'TRUE', false],
      ['Adding Worker Nodes', 'TRUE', false],
      ['Installing Add-ons', 'TRUE', false],
    ]);
    const ms = await machines(spec.id);
    expect(ms.map((m) => [m.pool, m.state]).sort()).toEqual([
      ['control-plane', 'running'],
      ['workers', 'running'],
      ['workers', 'running'],
    ]);
    expect(new Set(ms.filter((m) => m.pool === 'workers').map((m) => m.zone))).toEqual(
      new Set(['local-1a', 'local-1b']),
    );
    const events = await eventsOf(spec.id);
    expect(events.map((e) => e.reason)).toEqual(
      expect.arrayContaining([
        'PhaseProvisioning',
        'ImageReady',
        'NetworkReady',
        'MachineCreated',
        'AddonInstalled',
        'PhaseRunning',
      ]),
    );
  });

  it.each([
    ['scale up', (s: ClusterSpec) => withWorkers(s, { count: 4 }), 4, 'm5.large'],
    ['scale down to zero', (s: ClusterSpec) => withWorkers(s, { count: 0 }), 0, 'm5.large'],
    ['resize (rolling)', (s: ClusterSpec) => withWorkers(s, { instanceType: 'm5.xlarge' }), 2, 'm5.xlarge'],
    [
      'add a zone',
      (s: ClusterSpec) => withWorkers(s, { availabilityZones: ['local-1a', 'local-1b', 'local-1c'], count: 3 }),
      3,
      'm5.large',
    ],
  ])('should converge after a %s', async (_what, f, workers, instanceType) => {
    const spec = await createCluster();
    await converged(spec.id);
    await change(spec.id, f);
    await converged(spec.id);
    const ms = (await machines(spec.id)).filter((m) => m.pool === 'workers');
    expect(ms).toHaveLength(workers);
    expect(ms.every((m) => m.instanceType === instanceType && m.state === 'running')).toBe(true);
  });

  it('should add a pool, apply a profile update and delete the cluster', async () => {
    const spec = await createCluster();
    await converged(spec.id);
    await change(spec.id, (s) => ({
      ...s,
      nodePools: [
        ...s.nodePools,
        { name: 'gpu', role: 'WORKER', count: 1, instanceType: 'm5.xlarge', availabilityZones: ['local-1c'] },
      ],
    }));
    await converged(spec.id);
    expect((await machines(spec.id)).filter((m) => m.pool === 'gpu')).toHaveLength(1);

    await change(spec.id, (s) => ({ ...s, profileId: 'prof-2' }));
    const updated = await converged(spec.id);
    expect(updated.addonsProfileId).toBe('prof-2');

    await change(spec.id, (s) => ({ ...s, deletionRequested: true }));
    await until('deletion', async () => (await repo.getStatus(spec.id))?.phase === 'DELETED');
    expect(await machines(spec.id)).toEqual([]);
    expect((await repo.getStatus(spec.id))?.network).toBeNull();
  });

  it("should fail at Adding Worker Nodes on the vCPU quota, with the cloud's message, and recover once vCPUs are freed", async () => {
    const admin = localCloudAdmin(cloud.url);
    const used = (await admin.quota('local-1')).vcpuUsed;
    // Room for one cluster of 2 + 2x2 vCPUs, and for a second one's control plane only.
    await admin.setQuota(used + 8, 'local-1');
    try {
      const first = await createCluster();
      await converged(first.id);
      const second = await createCluster();
      const failed = await until('the quota failure', async () => {
        const c = (await repo.getStatus(second.id))?.conditions.find((x) => x.type === 'Adding Worker Nodes');
        return c?.failed && c.attempts >= 2 && c;
      });
      expect(failed.code).toBe('QUOTA_EXCEEDED');
      expect(failed.message).toMatch(
        /^You have requested more vCPU capacity than your current vCPU limit of \d+ allows/,
      );
      const failing = await repo.getStatus(second.id);
      expect(failing?.phase).toBe('PROVISIONING');
      // The failed milestone says when it is tried again; no other carries a time.
      const failedNow = failing!.conditions.find((c) => c.failed)!;
      expect(failedNow.nextAttemptAt).toBe(failing!.nextReconcileAt);
      expect(failing!.conditions.filter((c) => !c.failed).every((c) => c.nextAttemptAt === undefined)).toBe(true);
      // Events reach the store once the outbox has them in the stream, a moment after the status.
      const warnings = await until('the warnings', async () => {
        const found = (await repo.listEvents(second.id, { first: 1000 })).nodes.filter((e) => e.severity === 'WARNING');
        return found.length >= 2 && found;
      });
      expect(warnings.length).toBeGreaterThanOrEqual(2);

      await change(first.id, (s) => ({ ...s, deletionRequested: true }));
      const recovered = await converged(second.id);
      expect(recovered.conditions.find((c) => c.type === 'Adding Worker Nodes')).toMatchObject({
        status: 'TRUE',
        failed: false,
        attempts: 0,
      });
      expect(recovered.conditions.every((c) => c.nextAttemptAt === undefined)).toBe(true);
      expect((await eventsOf(second.id)).map((e) => e.reason)).toContain('Recovered');
    } finally {
      await admin.setQuota(1000, 'local-1');
    }
  });

  it("should let a second replica take over a dead replica's cluster, doubling and orphaning nothing", async () => {
    const spec = await createCluster(pools({ count: 3 }));
    // The first replica dies right after its first machine intents are stored.
    await until('intents', async () => (await repo.getStatus(spec.id))?.intents.length);
    await orchestrator.stop();
    const second = newOrchestrator();
    // Its lease on the cluster runs out before the new replica may claim it.
    const status = await repo.getStatus(spec.id);
    if (status?.leaseOwner)
      await repo.saveStatus({ ...status, leaseUntil: new Date(Date.now() - 1).toISOString() }, status.leaseOwner);
    orchestrator = second;
    second.start();
    await converged(spec.id);
    const ms = await machines(spec.id);
    expect(ms.filter((m) => m.pool === 'workers')).toHaveLength(3);
    expect(ms.filter((m) => m.pool === 'control-plane')).toHaveLength(1);
    expect(new Set(ms.map((m) => m.name)).size).toBe(ms.length);
  });

  it('should write exactly one event per machine created or deleted, whatever the failed and repeated cloud calls', async () => {
    const admin = localCloudAdmin(cloud.url);
    // Failures past the SDK's own retries, and calls whose work is done but whose answer is lost.
    const refusals = Array.from({ length: 3 }, () => ({
      action: 'RunInstances',
      code: 'InsufficientInstanceCapacity',
      message: 'We currently do not have sufficient capacity.',
      status: 500,
      times: 4,
    }));
    await admin.setFaults({ inject: refusals, lostResponseRate: 0.3 });
    try {
      const spec = await createCluster(pools({ count: 6, availabilityZones: ['local-1a', 'local-1b', 'local-1c'] }));
      await converged(spec.id);
      await change(spec.id, (s) => withWorkers(s, { count: 2 }));
      await converged(spec.id);
    } finally {
      await admin.resetFaults();
    }
    const spec = (await repo.getSpec(`cls-${serial}`))!.spec;
    const alive = (await machines(spec.id)).map((m) => `machine/${m.name}`);
    const events = await eventsOf(spec.id);
    const objects = (reason: string) =>
      events
        .filter((e) => e.reason === reason)
        .map((e) => e.object!)
        .sort();
    const created = objects('MachineCreated');
    const deleted = objects('MachineDeleted');
    // 7 machines made (1 + 6), 4 removed by the scale-down: one event each, no repeat.
    expect(created).toHaveLength(7);
    expect(new Set(created).size).toBe(7);
    expect(deleted).toHaveLength(4);
    expect(new Set(deleted).size).toBe(4);
    expect([...alive, ...deleted].sort()).toEqual(created);
  });
});

function withWorkers(spec: ClusterSpec, change: Partial<NodePool>): ClusterSpec {
  return { ...spec, nodePools: spec.nodePools.map((p) => (p.name === 'workers' ? { ...p, ...change } : p)) };
}
