import { createRequire } from 'node:module';
import { createLogger, createSqliteStore, Identity, type Store } from '@fleetgraph/kit';
import { agentReport, type AgentReport, type NodeRole } from '@fleetgraph/schema';
import { graphql, type GraphQLSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HealthRepository } from '../adapters/health.repo.js';
import { HealthIngest } from '../ingest/ingest.js';
import { ClusterRegistry } from '../ingest/registry.js';
import { buildHealthSchema } from './index.js';

// Vite resolves `graphql` to its ESM build while type-graphql and @apollo/subgraph, loaded by Node,
// get the CommonJS one: use the one Node loads everywhere (as services/images does).
vi.mock('graphql', () => createRequire(import.meta.url)('graphql'));

const log = createLogger('health-schema-test', 'silent');
const GiB = 2 ** 30;
const T = Date.UTC(2025, 2, 4, 12);

const ENTITY = /* GraphQL */ `
  query ($id: ID!, $scope: UsageScope, $window: Int) {
    _entities(representations: [{ __typename: "Cluster", id: $id }]) {
      ... on Cluster {
        id
        health { status lastHeartbeatAt stale reasons { factor message since stale } }
        usage(scope: $scope, windowMinutes: $window) { scope coresTotal coresUsed cpuUsage memoryUsage cpuRequestsCores memoryRequestsBytes nodes stale series { time cpuCores } }
        nodes { name role pool conditions { type status } usage { coresUsed cpuUsage } stale }
        services { namespace name type urls }
      }
    }
  }
`;

function report(seq: number, memoryPressure: boolean): AgentReport {
  const node = (name: string, role: NodeRole) => ({
    name,
    role,
    pool: role === 'WORKER' ? 'workers' : 'control-plane',
    zone: 'local-1a',
    instanceType: 'm5.large',
    conditions: [
      { type: 'Ready', status: 'TRUE' as const, reason: 'KubeletReady', message: 'kubelet is posting ready status' },
      {
        type: 'MemoryPressure',
        status: memoryPressure && role === 'WORKER' ? ('TRUE' as const) : ('FALSE' as const),
        reason: null,
        message: null,
      },
    ],
    capacity: { cpuCores: 2, memoryBytes: 8 * GiB, diskBytes: null },
    allocatable: { cpuCores: 1.9, memoryBytes: 7 * GiB, diskBytes: null },
    usage: { cpuCores: 0.5, memoryBytes: 2 * GiB, diskBytes: null },
    requests: { cpuCores: 1, memoryBytes: GiB, diskBytes: null },
    pods: 5,
  });
  return {
    schemaVersion: 1,
    clusterId: 'c1',
    tenantId: 't1',
    source: 'simulated',
    seq,
    agentStartedAt: new Date(T).toISOString(),
    sentAt: new Date(T).toISOString(),
    intervalMs: 30_000,
    nodes: [node('cp-1', 'CONTROL_PLANE'), node('w-1', 'WORKER')],
    services: [
      {
        namespace: 'kubernetes-dashboard',
        name: 'kubernetes-dashboard',
        type: 'NODE_PORT',
        urls: ['https://10.0.0.5:32443/'],
      },
    ],
    problems: [],
  };
}

describe('health subgraph', () => {
  let store: Store;
  let schema: GraphQLSchema;
  let now = T;
  const reader = new Identity({ sub: 'u1', tenantId: 't1', projects: { p1: 'viewer' } });
  const run = (source: string, variables: Record<string, unknown>, identity = reader) =>
    graphql({ schema, source, variableValues: variables, contextValue: { identity, requestId: 'r', log } });

  beforeAll(async () => {
    store = createSqliteStore({ file: ':memory:' });
    const registry = new ClusterRegistry();
    registry.apply({ id: 'c1', tenantId: 't1', projectId: 'p1', phase: 'RUNNING' });
    registry.apply({ id: 'c2', tenantId: 't1', projectId: 'p1', phase: 'PROVISIONING' });
    const ingest = new HealthIngest({
      registry,
      store: await HealthRepository.open(store),
      publisher: { health: () => {}, usage: () => {}, fleet: () => {}, forget: () => {} },
      log,
      now: () => now,
    });
    ingest.acceptReport(agentReport.subjectOf({ clusterId: 'c1' }), report(0, false));
    now += 30_000;
    ingest.acceptReport(agentReport.subjectOf({ clusterId: 'c1' }), report(1, true));
    schema = await buildHealthSchema({ ingest, registry, retentionMs: 24 * 3600_000 });
  });
  afterAll(() => store.close());

  it('should serve a cluster health, usage, nodes and services', async () => {
    const result = await run(ENTITY, { id: 'c1', scope: 'ALL', window: 5 });
    expect(result).toEqual({
      data: {
        _entities: [
          {
            id: 'c1',
            health: {
              status: 'PROGRESSING',
              lastHeartbeatAt: new Date(T + 30_000).toISOString(),
              stale: false,
              reasons: [
                {
                  factor: 'NODE_CONDITION',
                  message: 'node w-1 has MemoryPressure',
                  since: new Date(T + 30_000).toISOString(),
                  stale: false,
                },
              ],
            },
            usage: {
              scope: 'ALL',
              coresTotal: 4,
              coresUsed: 1,
              cpuUsage: 0.25,
              memoryUsage: 0.25,
              cpuRequestsCores: 2,
              memoryRequestsBytes: 2 * GiB,
              nodes: 2,
              stale: false,
              series: [
                { time: new Date(T).toISOString(), cpuCores: 1 },
                { time: new Date(T + 30_000).toISOString(), cpuCores: 1 },
              ],
            },
            nodes: [
              {
                name: 'cp-1',
                role: 'CONTROL_PLANE',
                pool: 'control-plane',
                conditions: [
                  { type: 'Ready', status: 'TRUE' },
                  { type: 'MemoryPressure', status: 'FALSE' },
                ],
                usage: { coresUsed: 0.5, cpuUsage: 0.25 },
                stale: false,
              },
              {
                name: 'w-1',
                role: 'WORKER',
                pool: 'workers',
                conditions: [
                  { type: 'Ready', status: 'TRUE' },
                  { type: 'MemoryPressure', status: 'TRUE' },
                ],
                usage: { coresUsed: 0.5, cpuUsage: 0.25 },
                stale: false,
              },
            ],
            services: [
              {
                namespace: 'kubernetes-dashboard',
                name: 'kubernetes-dashboard',
                type: 'NODE_PORT',
                urls: ['https://10.0.0.5:32443/'],
              },
            ],
          },
        ],
      },
    });
  });

  it('should default to the worker nodes over the last hour', async () => {
    const result = await run(ENTITY, { id: 'c1' });
    expect((result.data!._entities as { usage: unknown }[])[0]!.usage).toMatchObject({
      scope: 'WORKERS',
      coresTotal: 2,
      nodes: 1,
    });
  });

  it('should answer UNKNOWN, with nothing else, for a cluster that never reported', async () => {
    const result = await run(ENTITY, { id: 'c2' });
    expect(result.errors).toBeUndefined();
    expect((result.data!._entities as unknown[])[0]).toMatchObject({
      health: {
        status: 'UNKNOWN',
        lastHeartbeatAt: null,
        reasons: [{ factor: 'HEARTBEAT', message: 'no report from the cluster agent yet' }],
      },
      usage: { coresTotal: 0, series: [] },
      nodes: [],
      services: [],
    });
  });

  it('should resolve no cluster of another tenant or of an unreadable project', async () => {
    const stranger = new Identity({ sub: 'u2', tenantId: 't2', tenantAdmin: true, projects: { p1: 'admin' } });
    const outsider = new Identity({ sub: 'u3', tenantId: 't1', projects: { p9: 'admin' } });
    for (const identity of [stranger, outsider]) {
      const result = await run(
        `query ($id: ID!) { _entities(representations: [{ __typename: "Cluster", id: $id }]) { ... on Cluster { id } } }`,
        { id: 'c1' },
        identity,
      );
      expect(result).toEqual({ data: { _entities: [null] } });
    }
  });

  it('should refuse a window beyond the retention', async () => {
    const result = await run(ENTITY, { id: 'c1', window: 24 * 60 + 1 });
    expect(result.errors?.[0]).toMatchObject({
      message: 'windowMinutes must be between 1 and 1440',
      extensions: { code: 'BAD_USER_INPUT' },
    });
  });

  it('should count the clusters of the caller by status', async () => {
    const result = await run(`{ healthSummary { healthy progressing unhealthy unknown } }`, {});
    expect(result).toEqual({ data: { healthSummary: { healthy: 0, progressing: 1, unhealthy: 0, unknown: 1 } } });
    const none = await run(`{ healthSummary(projectId: "p9") { unknown } }`, {});
    expect(none).toEqual({ data: { healthSummary: { unknown: 0 } } });
  });
});
