import { createBus, createLogger, createOutbox, createSqliteStore, type Bus } from '@fleetgraph/kit';
import { rawNats, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import {
  clusterHealthChanged,
  clusterUsageSampled,
  HEALTH_METRICS_STREAM,
  HEALTH_STATUS_STREAM,
  type ClusterUsageMessage,
} from '@fleetgraph/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsHealthPublisher } from './health.events.js';

const log = createLogger('health-events-test', 'silent');

const usage = (clusterId: string, scope: 'WORKERS' | 'ALL', coresUsed: number): ClusterUsageMessage => ({
  tenantId: 't1',
  clusterId,
  scope,
  time: new Date().toISOString(),
  coresTotal: 8,
  coresUsed,
  cpuUsage: coresUsed / 8,
  memoryTotalBytes: 1,
  memoryUsedBytes: 0,
  memoryUsage: 0,
  cpuRequestsCores: 1,
  memoryRequestsBytes: 1,
  diskTotalBytes: null,
  diskUsedBytes: null,
  diskUsage: null,
  nodes: 2,
  observedAt: new Date().toISOString(),
  stale: false,
  series: [],
});

describe('NatsHealthPublisher against a real nats-server', () => {
  let nats: NatsServer;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await createBus({ url: nats.url, name: 'health', log, credentials: await nats.credentials('health') });
    await bus.ensureStreams([HEALTH_STATUS_STREAM, HEALTH_METRICS_STREAM]);
  });
  afterAll(async () => {
    await bus.close();
    await nats.stop();
  });

  it('should store the latest sample per cluster and scope, and every health change, in their streams', async () => {
    const store = createSqliteStore({ file: ':memory:' });
    const outbox = await createOutbox({ store, bus, log, events: [clusterHealthChanged] });
    outbox.start();
    const publisher = new NatsHealthPublisher(bus, outbox, store, log, 20);
    publisher.usage(usage('c1', 'WORKERS', 1));
    publisher.usage(usage('c1', 'ALL', 2));
    publisher.usage(usage('c1', 'WORKERS', 3));
    publisher.usage(usage('c2', 'WORKERS', 4));
    publisher.health({
      tenantId: 't1',
      clusterId: 'c1',
      status: 'HEALTHY',
      lastHeartbeatAt: null,
      reasons: [],
      stale: false,
      changedAt: new Date().toISOString(),
    });
    await publisher.flush();
    while ((await outbox.pending()) > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await outbox.stop();
    await bus.flush();
    const jsm = await rawNats(bus).manager();
    const latest = await jsm.streams.getMessage(HEALTH_METRICS_STREAM.name, {
      last_by_subj: clusterUsageSampled.filter('t1', 'c1', 'WORKERS'),
    });
    expect(latest.json<ClusterUsageMessage>().coresUsed).toBe(3);
    expect((await jsm.streams.info(HEALTH_METRICS_STREAM.name)).state.messages).toBe(3);
    const status = await jsm.streams.getMessage(HEALTH_STATUS_STREAM.name, {
      last_by_subj: clusterHealthChanged.filter('t1', 'c1'),
    });
    expect(status.json<{ status: string }>().status).toBe('HEALTHY');
    expect(publisher.failures).toBe(0);
  });
});
