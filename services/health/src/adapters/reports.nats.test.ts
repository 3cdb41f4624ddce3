import { BusError, createBus, createLogger, createStore, type Bus, type Store } from '@fleetgraph/kit';
import { startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { agentReport, getCluster, type AgentReport } from '@fleetgraph/schema';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthIngest } from '../ingest/ingest.js';
import type { HealthPublisher } from '../ingest/ports.js';
import { ClusterRegistry } from '../ingest/registry.js';
import { HealthRepository } from './health.repo.js';
import { subscribeReports } from './reports.nats.js';

const log = createLogger('reports-test', 'silent');

const report = (clusterId: string, seq: number): AgentReport => ({
  schemaVersion: 1,
  clusterId,
  tenantId: 't1',
  source: 'simulated',
  seq,
  agentStartedAt: new Date().toISOString(),
  sentAt: new Date().toISOString(),
  intervalMs: 30_000,
  nodes: [],
  services: [],
  problems: [],
});

async function until(what: string, probe: () => boolean, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('agent reports of clusters the registry missed, against a real nats-server', () => {
  let nats: NatsServer;
  let bus: Bus;
  let clusters: Bus;
  let dir: string;
  let store: Store;
  const asked: string[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await createBus({ url: nats.url, name: 'health', log, credentials: await nats.credentials('health') });
    clusters = await createBus({
      url: nats.url,
      name: 'clusters',
      log,
      credentials: await nats.credentials('clusters'),
    });
    // The clusters service knows c7 (its lifecycle message never reached health), not c8.
    clusters.serve(getCluster, async ({ tenantId, id }) => {
      asked.push(id);
      if (id !== 'c7' || tenantId !== 't1') throw new BusError('NOT_FOUND', `cluster ${id} not found`);
      return {
        id,
        tenantId,
        projectId: 'p1',
        name: id,
        phase: 'RUNNING' as const,
        cloud: { type: 'LOCAL' as const, region: 'local-1' },
        nodePools: [],
      };
    });
    dir = await mkdtemp(join(tmpdir(), 'fleetgraph-reports-'));
    store = await createStore({ dataDir: dir, service: 'health' });
  });
  afterAll(async () => {
    await clusters?.close();
    await bus?.close();
    await store?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('should learn a cluster from its first report when the clusters service knows it, and ask once about one it does not', async () => {
    const registry = new ClusterRegistry();
    const publisher: HealthPublisher = { health: () => {}, usage: () => {}, fleet: () => {}, forget: () => {} };
    const ingest = new HealthIngest({
      registry,
      store: await HealthRepository.open(store),
      publisher,
      log,
      tickMs: 100,
    });
    const listening = subscribeReports(bus, ingest, { recovery: { registry, log, retryAfterMs: 60_000 } });
    await bus.flush();

    clusters.send(agentReport, report('c7', 0));
    await until(
      'c7 learnt and its report applied',
      () => registry.get('c7') !== undefined && ingest.stats().outcomes.accepted === 1,
    );
    expect(registry.get('c7')).toEqual({ id: 'c7', tenantId: 't1', projectId: 'p1', phase: 'RUNNING' });
    // No node observed yet: not healthy.
    expect(ingest.view('c7')?.health.status).toBe('PROGRESSING');

    for (let seq = 0; seq < 3; seq++) clusters.send(agentReport, report('c8', seq));
    await until('c8 reports dropped', () => ingest.stats().outcomes.unknown_cluster >= 4);
    await new Promise((r) => setTimeout(r, 200));
    expect(asked.filter((id) => id === 'c8')).toHaveLength(1);
    expect(registry.get('c8')).toBeUndefined();
    listening.unsubscribe();
  });
});
