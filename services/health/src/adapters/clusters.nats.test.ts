import { createBus, createLogger, type Bus } from '@fleetgraph/kit';
import { startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { CLUSTER_STATE_STREAM, clusterLifecycle, type ClusterSummary } from '@fleetgraph/schema';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClusterRegistry } from '../ingest/registry.js';
import { followClusters, type ClusterFollower } from './clusters.nats.js';

const log = createLogger('clusters-follow-test', 'silent');

const summary = (id: string, tenantId: string, phase: ClusterSummary['phase'] = 'RUNNING'): ClusterSummary => ({
  id,
  tenantId,
  projectId: 'p1',
  name: id,
  phase,
  cloud: { type: 'LOCAL', region: 'local-1' },
  nodePools: [{ name: 'workers', role: 'WORKER', count: 2 }],
});

async function until(what: string, probe: () => boolean, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('following cluster lifecycle events against a real nats-server', () => {
  let nats: NatsServer;
  let bus: Bus;
  let follower: ClusterFollower | undefined;

  beforeEach(async () => {
    nats = await startNatsServer();
    bus = await createBus({ url: nats.url, name: 'health', log });
  });
  afterEach(async () => {
    await follower?.stop();
    await bus.close();
    await nats.stop();
  });

  it('should replay every existing cluster before saying it caught up, then follow live changes', async () => {
    await bus.ensureStreams([CLUSTER_STATE_STREAM]);
    for (const s of [summary('c1', 't1', 'PROVISIONING'), summary('c1', 't1'), summary('c2', 't2'), summary('c3', 't1'), summary('c3', 't1', 'DELETED')]) {
      await bus.publish(clusterLifecycle, s);
    }
    const registry = new ClusterRegistry();
    const removed: string[] = [];
    follower = await followClusters({ bus, registry, log, onRemoved: (id) => removed.push(id) });
    await follower.caughtUp;
    // The stream keeps the last event per cluster: c3 is gone, c1 is RUNNING.
    expect(registry.get('c1')).toEqual({ id: 'c1', tenantId: 't1', projectId: 'p1', phase: 'RUNNING' });
    expect(registry.get('c2')?.tenantId).toBe('t2');
    expect(registry.get('c3')).toBeUndefined();
    expect(registry.size).toBe(2);

    await bus.publish(clusterLifecycle, summary('c2', 't2', 'DELETED'));
    await bus.publish(clusterLifecycle, summary('c4', 't1', 'PROVISIONING'));
    await until('live events', () => registry.get('c4') !== undefined);
    expect(registry.get('c2')).toBeUndefined();
    expect(removed).toEqual(['c2']);
    expect([...registry.ofTenant('t1')].map((c) => c.id).sort()).toEqual(['c1', 'c4']);
  });

  it('should wait for the clusters service to create its stream', async () => {
    const registry = new ClusterRegistry();
    follower = await followClusters({ bus, registry, log, onRemoved: () => {}, retryMs: 50 });
    await new Promise((r) => setTimeout(r, 200));
    expect(follower.isCaughtUp).toBe(false);
    await bus.ensureStreams([CLUSTER_STATE_STREAM]);
    await follower.caughtUp;
    await bus.publish(clusterLifecycle, summary('c1', 't1'));
    await until('the first cluster', () => registry.size === 1);
  });

  it('should skip a malformed event and go on', async () => {
    await bus.ensureStreams([CLUSTER_STATE_STREAM]);
    await bus.jetstream.publish(clusterLifecycle.filter('t1', 'c9'), new TextEncoder().encode('{"id":"c9"}'));
    await bus.publish(clusterLifecycle, summary('c1', 't1'));
    const registry = new ClusterRegistry();
    follower = await followClusters({ bus, registry, log, onRemoved: () => {} });
    await follower.caughtUp;
    expect(registry.size).toBe(1);
    expect(follower.malformed).toBe(1);
  });
});
