import { createLogger, createSqliteStore, type Store } from '@fleetgraph/kit';
import {
  agentReport,
  type AgentReport,
  type ClusterHealthMessage,
  type ClusterUsageMessage,
  type FleetHealthMessage,
  type ReportedNode,
} from '@fleetgraph/schema';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HealthRepository } from '../adapters/health.repo.js';
import { DEFAULT_POLICY } from '../domain/health.js';
import { HealthIngest } from './ingest.js';
import type { HealthPublisher, StoredClusterHealth } from './ports.js';
import { ClusterRegistry } from './registry.js';

const log = createLogger('ingest-test', 'silent');
const GiB = 2 ** 30;
const MIN = 60_000;
const encoder = new TextEncoder();

/** Small builders of reports. */
const build = {
  node(
    name: string,
    role: ReportedNode['role'] = 'WORKER',
    change: { memoryPressure?: boolean; cpu?: number; memory?: number } = {},
  ): ReportedNode {
    const condition = (type: string, status: 'TRUE' | 'FALSE') => ({ type, status, reason: null, message: null });
    return {
      name,
      role,
      pool: role === 'WORKER' ? 'workers' : 'control-plane',
      zone: 'local-1a',
      instanceType: 'm5.xlarge',
      conditions: [
        condition('Ready', 'TRUE'),
        condition('MemoryPressure', change.memoryPressure ? 'TRUE' : 'FALSE'),
        condition('DiskPressure', 'FALSE'),
      ],
      capacity: { cpuCores: 4, memoryBytes: 16 * GiB, diskBytes: 100 * GiB },
      allocatable: { cpuCores: 3.9, memoryBytes: 15 * GiB, diskBytes: 90 * GiB },
      usage: { cpuCores: change.cpu ?? 1, memoryBytes: (change.memory ?? 4) * GiB, diskBytes: 30 * GiB },
      requests: { cpuCores: 1.5, memoryBytes: 3 * GiB, diskBytes: null },
      pods: 12,
    };
  },
  report(
    clusterId: string,
    tenantId: string,
    seq: number,
    nodes: ReportedNode[] | null,
    extra: Partial<AgentReport> = {},
  ): AgentReport {
    return {
      schemaVersion: 1,
      clusterId,
      tenantId,
      source: 'simulated',
      seq,
      agentStartedAt: '2025-03-04T00:00:00.000Z',
      sentAt: new Date(Date.UTC(2025, 2, 4, 12)).toISOString(),
      intervalMs: 30_000,
      nodes,
      services: nodes && [
        { namespace: 'monitoring', name: 'prometheus-server', type: 'LOAD_BALANCER', urls: ['http://10.0.0.10:9090/'] },
      ],
      problems: [],
      ...extra,
    };
  },
};
const nodes = (change: Parameters<typeof build.node>[2] = {}) => [
  build.node('cp-1', 'CONTROL_PLANE'),
  build.node('w-1', 'WORKER', change),
  build.node('w-2'),
];
const raw = (report: unknown) => encoder.encode(JSON.stringify(report));
const subjectOf = (clusterId: string) => agentReport.subjectOf({ clusterId });

describe('HealthIngest', () => {
  let store: Store;
  let repo: HealthRepository;
  let registry: ClusterRegistry;
  let now: number;
  let published: {
    health: ClusterHealthMessage[];
    usage: ClusterUsageMessage[];
    fleet: FleetHealthMessage[];
    forgotten: string[];
  };
  let ingest: HealthIngest;
  const publisher: HealthPublisher = {
    health: (m) => published.health.push(m),
    usage: (m) => published.usage.push(m),
    fleet: (m) => published.fleet.push(m),
    forget: (c) => published.forgotten.push(c.clusterId),
  };
  const create = () =>
    new HealthIngest({ registry, store: repo, publisher, log, now: () => now, sampleBucketMs: 5 * MIN, tickMs: 100 });

  beforeEach(async () => {
    store = createSqliteStore({ file: ':memory:' });
    repo = await HealthRepository.open(store);
    registry = new ClusterRegistry();
    registry.apply({ id: 'c1', tenantId: 't1', projectId: 'p1', phase: 'RUNNING' });
    registry.apply({ id: 'c2', tenantId: 't2', projectId: 'p2', phase: 'RUNNING' });
    now = Date.UTC(2025, 2, 4, 12);
    published = { health: [], usage: [], fleet: [], forgotten: [] };
    ingest = create();
  });
  afterEach(() => store.close());

  it('should take a report: HEALTHY with nodes, services and usage, published once', () => {
    expect(ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 0, nodes())))).toBe('accepted');
    const view = ingest.view('c1')!;
    expect(view.health).toMatchObject({ status: 'HEALTHY', reasons: [], stale: false });
    expect(view.nodes.map((n) => [n.name, n.role, n.cpuUsed])).toEqual([
      ['cp-1', 'CONTROL_PLANE', 1],
      ['w-1', 'WORKER', 1],
      ['w-2', 'WORKER', 1],
    ]);
    expect(view.services).toHaveLength(1);
    expect(view.workers).toMatchObject({ coresTotal: 8, coresUsed: 2, cpuRequestsCores: 3, nodes: 2 });
    expect(view.all).toMatchObject({ coresTotal: 12, coresUsed: 3, nodes: 3 });
    expect(published.health).toEqual([
      {
        tenantId: 't1',
        clusterId: 'c1',
        status: 'HEALTHY',
        lastHeartbeatAt: new Date(now).toISOString(),
        reasons: [],
        stale: false,
        changedAt: new Date(now).toISOString(),
      },
    ]);
    expect(published.usage.map((u) => [u.scope, u.coresUsed, u.cpuUsage, u.series])).toEqual([
      ['WORKERS', 2, 0.25, [{ time: new Date(now).toISOString(), cpuCores: 2, memoryBytes: 8 * GiB }]],
      ['ALL', 3, 0.25, [{ time: new Date(now).toISOString(), cpuCores: 3, memoryBytes: 12 * GiB }]],
    ]);
    // The fleet overview's view: the health and the workers' usage, with the project.
    expect(published.fleet).toEqual([
      {
        tenantId: 't1',
        projectId: 'p1',
        clusterId: 'c1',
        status: 'HEALTHY',
        stale: false,
        cpuUsage: 0.25,
        memoryUsage: published.usage[0]!.memoryUsage,
        nodes: 2,
        observedAt: new Date(now).toISOString(),
        changedAt: new Date(now).toISOString(),
      },
    ]);
    // The same health again is no change; its usage goes to the fleet again, at most every 10 s.
    now += 5_000;
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 1, nodes())));
    expect(published.fleet).toHaveLength(1);
    now += 25_000;
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 2, nodes())));
    expect(published.health).toHaveLength(1);
    expect(published.fleet.map((f) => f.observedAt)).toEqual([
      new Date(now - 30_000).toISOString(),
      new Date(now).toISOString(),
    ]);
  });

  it.each([
    { name: 'a body that is not JSON', subject: subjectOf('c1'), body: encoder.encode('{nope'), outcome: 'malformed' },
    {
      name: 'a body of the wrong shape',
      subject: subjectOf('c1'),
      body: raw({ ...build.report('c1', 't1', 0, nodes()), nodes: [{ name: 'w-1' }] }),
      outcome: 'malformed',
    },
    {
      name: 'an unknown schema version',
      subject: subjectOf('c1'),
      body: raw({ ...build.report('c1', 't1', 0, nodes()), schemaVersion: 2 }),
      outcome: 'malformed',
    },
    {
      name: 'a report of another cluster than its subject',
      subject: subjectOf('c2'),
      body: raw(build.report('c1', 't1', 0, nodes())),
      outcome: 'mismatched_subject',
    },
    {
      name: 'a cluster that does not exist',
      subject: subjectOf('c9'),
      body: raw(build.report('c9', 't1', 0, nodes())),
      outcome: 'unknown_cluster',
    },
    {
      name: 'a report claiming another tenant',
      subject: subjectOf('c2'),
      body: raw(build.report('c2', 't1', 0, nodes({ memoryPressure: true }))),
      outcome: 'foreign_tenant',
    },
  ])('should drop and count $name, changing nothing', ({ subject, body, outcome }) => {
    expect(ingest.accept(subject, body)).toBe(outcome);
    expect(ingest.view('c1')).toBeNull();
    expect(ingest.view('c2')).toBeNull();
    expect(published).toEqual({ health: [], usage: [], fleet: [], forgotten: [] });
    expect(ingest.stats().outcomes[outcome as 'malformed']).toBe(1);
  });

  it('should drop a report older than one already taken from the same agent run', () => {
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 5, nodes())));
    expect(ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 4, nodes({ memoryPressure: true }))))).toBe(
      'out_of_order',
    );
    expect(ingest.view('c1')!.health.status).toBe('HEALTHY');
    // A restarted agent starts again from 0.
    expect(
      ingest.accept(
        subjectOf('c1'),
        raw(build.report('c1', 't1', 0, nodes(), { agentStartedAt: '2025-03-04T11:00:00.000Z' })),
      ),
    ).toBe('accepted');
  });

  it('should turn memory pressure PROGRESSING, then UNHEALTHY by timer after the threshold', () => {
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 0, nodes({ memoryPressure: true }))));
    expect(ingest.view('c1')!.health).toMatchObject({
      status: 'PROGRESSING',
      reasons: [{ factor: 'NODE_CONDITION', message: 'node w-1 has MemoryPressure' }],
    });
    for (let i = 1; i <= 10; i++) {
      now += 30_000;
      ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', i, nodes({ memoryPressure: true }))));
      ingest.tick();
    }
    expect(ingest.view('c1')!.health.status).toBe('UNHEALTHY');
    expect(published.health.map((h) => h.status)).toEqual(['PROGRESSING', 'UNHEALTHY']);
    now += 30_000;
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 11, nodes())));
    expect(published.health.map((h) => h.status)).toEqual(['PROGRESSING', 'UNHEALTHY', 'HEALTHY']);
  });

  it('should judge CPU over its threshold for the window as METRICS', () => {
    for (let i = 0; i <= 20; i++) {
      ingest.accept(
        subjectOf('c1'),
        raw(
          build.report(
            'c1',
            't1',
            i,
            nodes({ cpu: 3.9 }).map((n) => (n.role === 'WORKER' ? { ...n, usage: { ...n.usage!, cpuCores: 3.9 } } : n)),
          ),
        ),
      );
      now += 30_000;
    }
    expect(ingest.view('c1')!.health).toMatchObject({
      status: 'UNHEALTHY',
      reasons: [{ factor: 'METRICS', message: 'CPU usage of the worker nodes is above 90%' }],
    });
  });

  it('should lose the heartbeat by timer alone, show the rest as stale, and recover on the next report', () => {
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 0, nodes({ memoryPressure: true }))));
    now += 2 * MIN;
    ingest.tick();
    expect(ingest.view('c1')!.health).toMatchObject({
      status: 'PROGRESSING',
      reasons: [{ factor: 'HEARTBEAT' }, { factor: 'NODE_CONDITION' }],
    });
    now += 9 * MIN;
    ingest.tick();
    expect(ingest.view('c1')!.health).toMatchObject({
      status: 'UNHEALTHY',
      stale: true,
      reasons: [
        { factor: 'HEARTBEAT', stale: false },
        { factor: 'NODE_CONDITION', stale: true },
      ],
    });
    expect(published.health.at(-1)).toMatchObject({ status: 'UNHEALTHY', stale: true });
    now += MIN;
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 1, nodes())));
    expect(ingest.view('c1')!.health).toMatchObject({ status: 'HEALTHY', stale: false });
  });

  it('should take the numbers of a compact report for the nodes of the last full one', () => {
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 0, nodes())));
    now += 30_000;
    const hot = nodes().map((n) => ({
      name: n.name,
      cpuCores: n.role === 'WORKER' ? 3.8 : 1,
      memoryBytes: 4 * GiB,
      diskBytes: null,
      cpuRequests: 2,
      memoryRequests: GiB,
      pods: 20,
    }));
    expect(
      ingest.accept(subjectOf('c1'), raw({ ...build.report('c1', 't1', 1, null), services: null, usage: hot })),
    ).toBe('accepted');
    const view = ingest.view('c1')!;
    expect(view.nodesObservedAt).toBe(now);
    expect(view.workers).toMatchObject({ coresUsed: 7.6, cpuRequestsCores: 4, nodes: 2 });
    expect(view.nodes[1]).toMatchObject({ name: 'w-1', cpuUsed: 3.8, pods: 20, conditions: nodes()[1]!.conditions });
    expect(view.services).toHaveLength(1);
    // Judged on the new numbers: workers at 95% CPU.
    expect(view.health).toMatchObject({ status: 'PROGRESSING', reasons: [{ factor: 'METRICS' }] });
    expect(published.usage.at(-2)).toMatchObject({ scope: 'WORKERS', coresUsed: 7.6 });
  });

  it('should take a compact report about other nodes as a heartbeat only', () => {
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 0, nodes())));
    now += 30_000;
    const other = [
      { name: 'w-9', cpuCores: 3.9, memoryBytes: GiB, diskBytes: null, cpuRequests: 1, memoryRequests: GiB, pods: 1 },
    ];
    expect(
      ingest.accept(subjectOf('c1'), raw({ ...build.report('c1', 't1', 1, null), services: null, usage: other })),
    ).toBe('accepted');
    const view = ingest.view('c1')!;
    expect(view.lastHeartbeatAt).toBe(now);
    expect(view.nodesObservedAt).toBe(now - 30_000);
    expect(view.nodes.map((n) => n.name)).toEqual(['cp-1', 'w-1', 'w-2']);
    expect(view.health.status).toBe('HEALTHY');
  });

  it('should keep the nodes of a bare heartbeat as last observed', () => {
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 0, nodes())));
    const observedAt = now;
    now += 30_000;
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 1, null, { problems: ['nodes: 503'] })));
    const view = ingest.view('c1')!;
    expect(view.nodes).toHaveLength(3);
    expect(view.nodesObservedAt).toBe(observedAt);
    expect(view.lastHeartbeatAt).toBe(now);
    expect(published.usage).toHaveLength(2);
  });

  it('should write in batches and come back the same after a restart, series included', async () => {
    for (let i = 0; i < 24; i++) {
      ingest.accept(
        subjectOf('c1'),
        raw(build.report('c1', 't1', i, nodes({ memoryPressure: i >= 20, cpu: 1 + i / 10 }))),
      );
      now += 30_000;
    }
    await ingest.flush();
    const series = await ingest.series('c1', 'WORKERS', 60 * MIN);
    expect(series).toHaveLength(24);
    expect(series[0]!.cpuCores).toBeCloseTo(2, 9);
    await ingest.drain();

    published = { health: [], usage: [], fleet: [], forgotten: [] };
    const restarted = create();
    expect(await restarted.restore()).toBe(1);
    const before = ingest.view('c1')!;
    const after = restarted.view('c1')!;
    expect(after.health).toEqual({ ...before.health, nextEvaluationAt: after.health.nextEvaluationAt });
    expect(after.nodes).toEqual(before.nodes);
    expect(after.services).toEqual(before.services);
    expect(await restarted.series('c1', 'WORKERS', 60 * MIN)).toEqual(series);
    expect(await restarted.series('c1', 'ALL', 5 * MIN)).toHaveLength(10);
    // Nothing changed while it was down: nothing to publish.
    expect(published.health).toEqual([]);
  });

  it('should write many clusters in commits of several, and each alone when a commit fails', async () => {
    const ids = Array.from({ length: 120 }, (_, i) => `m${i}`);
    for (const id of ids) registry.apply({ id, tenantId: 't1', projectId: 'p1', phase: 'RUNNING' });
    const report = (at: HealthIngest, seq: number, memoryPressure: boolean) => {
      for (const id of ids)
        expect(at.accept(subjectOf(id), raw(build.report(id, 't1', seq, nodes({ memoryPressure }))))).toBe('accepted');
    };
    const saveAll = vi.spyOn(repo, 'saveAll');
    const save = vi.spyOn(repo, 'save');
    report(ingest, 0, false);
    now += 30_000;
    report(ingest, 1, false);
    await ingest.drain();
    // Health, nodes and the sample buckets of each (a bucket may have closed in between), 50 a commit.
    expect(ingest.stats()).toMatchObject({ writeErrors: 0, pendingWrites: 0 });
    expect(ingest.stats().writes).toBeGreaterThanOrEqual(3 * ids.length);
    expect(saveAll).toHaveBeenCalledTimes(3);
    expect(save).not.toHaveBeenCalled();

    // Another writer wrote one of them meanwhile: the commit that holds it fails, and each of
    // that commit is written alone, that one over the other writer's.
    let theirs: { health: StoredClusterHealth; version: number } | undefined;
    for await (const stored of repo.loadAll()) if (stored.health.id === 'm7') theirs = stored;
    await repo.save({ ...theirs!.health, seq: 99 }, theirs!.version);
    save.mockClear();
    now += 30_000;
    report(ingest, 2, true);
    await ingest.flush();
    expect(ingest.stats()).toMatchObject({ writeErrors: 0, pendingWrites: 0 });
    expect(save).toHaveBeenCalledTimes(50);
    await ingest.drain();
    const series = await ingest.series('m7', 'ALL', 60 * MIN);
    expect(series).toHaveLength(3);

    // After a restart, the buckets' spans are stored already: merged one by one.
    const restarted = create();
    expect(await restarted.restore()).toBe(ids.length);
    for (const id of ids) expect(restarted.view(id)?.health.status).toBe('PROGRESSING');
    expect(restarted.view('m7')?.health.reasons).toEqual(ingest.view('m7')?.health.reasons);
    now += 30_000;
    report(restarted, 3, true);
    await restarted.drain();
    expect(restarted.stats()).toMatchObject({ writeErrors: 0, pendingWrites: 0 });
    expect(await restarted.series('m7', 'ALL', 60 * MIN)).toEqual([
      ...series,
      { time: now, cpuCores: 3, memoryBytes: 12 * GiB },
    ]);
  });

  it('should forget a deleted cluster and prune clusters deleted while it was down', async () => {
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 0, nodes())));
    ingest.accept(subjectOf('c2'), raw(build.report('c2', 't2', 0, nodes())));
    await ingest.drain();
    registry.apply({ id: 'c2', tenantId: 't2', projectId: 'p2', phase: 'DELETED' });
    expect(await ingest.prune()).toBe(1);
    expect(published.forgotten).toEqual(['c2']);
    expect(ingest.view('c2')).toBeNull();
    const restarted = create();
    expect(await restarted.restore()).toBe(1);
    expect(await restarted.series('c2', 'ALL', 60 * MIN)).toEqual([]);
    expect(restarted.accept(subjectOf('c2'), raw(build.report('c2', 't2', 1, nodes())))).toBe('unknown_cluster');
  });

  it('should count clusters by status and by failing check, each check once per cluster', () => {
    const busy = (name: string) => build.node(name, 'WORKER', { memoryPressure: true, cpu: 4 });
    ingest.accept(
      subjectOf('c1'),
      raw(build.report('c1', 't1', 0, [build.node('cp-1', 'CONTROL_PLANE'), busy('w-1'), busy('w-2')])),
    );
    ingest.accept(subjectOf('c2'), raw(build.report('c2', 't2', 0, nodes())));
    expect(ingest.view('c1')?.health.reasons.map((r) => r.factor)).toEqual([
      'METRICS',
      'NODE_CONDITION',
      'NODE_CONDITION',
    ]);
    expect(ingest.healthCounts()).toEqual({
      byStatus: { HEALTHY: 1, PROGRESSING: 1, UNHEALTHY: 0, UNKNOWN: 0 },
      failing: { HEARTBEAT: 0, NODE_CONDITION: 1, METRICS: 1 },
    });
  });

  it('should count clusters by status for a set of ids', () => {
    ingest.accept(subjectOf('c1'), raw(build.report('c1', 't1', 0, nodes({ memoryPressure: true }))));
    expect(ingest.statusCounts(['c1', 'c2', 'c3'])).toEqual({ HEALTHY: 0, PROGRESSING: 1, UNHEALTHY: 0, UNKNOWN: 2 });
  });

  it('should use the default policy unless told otherwise', () => {
    expect(ingest.policy).toEqual(DEFAULT_POLICY);
  });
});
