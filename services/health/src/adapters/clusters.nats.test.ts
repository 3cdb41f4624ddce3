import { createBus, createLogger, DEAD_LETTER_STREAM, type Bus } from '@fleetgraph/kit';
import { rawNats, startNatsServer, type NatsServer } from '@fleetgraph/kit/testing';
import { CLUSTER_STATE_STREAM, clusterLifecycle, type ClusterSummary } from '@fleetgraph/schema';
import { headers } from 'nats';
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
    bus = await createBus({ url: nats.url, name: 'health', log, credentials: await nats.credentials('health') });
  });
  afterEach(async () => {
    await follower?.stop();
    await bus.close();
    await nats.stop();
  });

  it('should replay every existing cluster before saying it caught up, then follow live changes', async () => {
    await bus.ensureStreams([CLUSTER_STATE_STREAM]);
    for (const s of [
      summary('c1', 't1', 'PROVISIONING'),
      summary('c1', 't1'),
      summary('c2', 't2'),
      summary('c3', 't1'),
      summary('c3', 't1', 'DELETED'),
    ]) {
      await bus.publish(clusterLifecycle, s);
    }
    const registry = new ClusterRegistry();
    const removed: string[] = [];
    follower = await followClusters({ bus, registry, onRemoved: (id) => removed.push(id) });
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
    follower = await followClusters({ bus, registry, onRemoved: () => {}, retryMs: 50 });
    await new Promise((r) => setTimeout(r, 200));
    expect(follower.isCaughtUp).toBe(false);
    await bus.ensureStreams([CLUSTER_STATE_STREAM]);
    await follower.caughtUp;
    await bus.publish(clusterLifecycle, summary('c1', 't1'));
    await until('the first cluster', () => registry.size === 1);
  });

  /** The dead letters of lifecycle subjects: subject, the error and source headers, body. */
  async function deadLetters() {
    const manager = await rawNats(bus).manager();
    const info = await manager.streams.info(DEAD_LETTER_STREAM.name, {
      subjects_filter: `deadletter.${clusterLifecycle.prefix}.>`,
    });
    const letters = [];
    for (const subject of Object.keys(info.state.subjects ?? {}).sort()) {
      const m = await manager.streams.getMessage(DEAD_LETTER_STREAM.name, { last_by_subj: subject });
      letters.push({
        subject,
        error: m.header.get('fleetgraph-error'),
        source: m.header.get('fleetgraph-subject'),
        body: new TextDecoder().decode(m.data),
        count: info.state.subjects![subject],
      });
    }
    return letters;
  }

  it('should dead-letter a malformed event and go on', async () => {
    await bus.ensureStreams([CLUSTER_STATE_STREAM]);
    await rawNats(bus).jetstream.publish(clusterLifecycle.filter('t1', 'c9'), new TextEncoder().encode('{"id":"c9"}'));
    await rawNats(bus).jetstream.publish(clusterLifecycle.filter('t1', 'c8'), new TextEncoder().encode('not json'));
    await bus.publish(clusterLifecycle, summary('c1', 't1'));
    const registry = new ClusterRegistry();
    follower = await followClusters({ bus, registry, onRemoved: () => {} });
    await follower.caughtUp;
    expect(registry.size).toBe(1);
    expect(follower.malformed).toBe(2);
    const letters = await deadLetters();
    expect(letters).toEqual([
      {
        subject: 'deadletter.clusters.v1.lifecycle.t1.c8',
        error: expect.stringMatching(/^body is not JSON/),
        source: 'clusters.v1.lifecycle.t1.c8',
        body: 'not json',
        count: 1,
      },
      {
        subject: 'deadletter.clusters.v1.lifecycle.t1.c9',
        error: expect.stringMatching(/^body does not match schema/),
        source: 'clusters.v1.lifecycle.t1.c9',
        body: '{"id":"c9"}',
        count: 1,
      },
    ]);
  });

  it('should dead-letter a well-formed event of another schema version instead of applying it', async () => {
    await bus.ensureStreams([CLUSTER_STATE_STREAM]);
    const h = headers();
    h.set('fleetgraph-schema-version', '2');
    await rawNats(bus).jetstream.publish(
      clusterLifecycle.filter('t1', 'c7'),
      new TextEncoder().encode(JSON.stringify(summary('c7', 't1'))),
      { headers: h },
    );
    const registry = new ClusterRegistry();
    follower = await followClusters({ bus, registry, onRemoved: () => {} });
    await follower.caughtUp;
    expect(registry.get('c7')).toBeUndefined();
    expect(await deadLetters()).toEqual([
      expect.objectContaining({
        subject: 'deadletter.clusters.v1.lifecycle.t1.c7',
        error: 'schema version 2 is not 1',
        count: 1,
      }),
    ]);
  });

  it('should dead-letter a malformed event once, however often it is read again', async () => {
    await bus.ensureStreams([CLUSTER_STATE_STREAM]);
    await rawNats(bus).jetstream.publish(clusterLifecycle.filter('t1', 'c9'), new TextEncoder().encode('[]'));
    // Two replicas at once, then a restart of one: each reads the retained event.
    const first = await followClusters({ bus, registry: new ClusterRegistry(), onRemoved: () => {} });
    const second = await followClusters({ bus, registry: new ClusterRegistry(), onRemoved: () => {} });
    await Promise.all([first.caughtUp, second.caughtUp]);
    await first.stop();
    follower = await followClusters({ bus, registry: new ClusterRegistry(), onRemoved: () => {} });
    await follower.caughtUp;
    await second.stop();
    expect(follower.malformed).toBe(1);
    expect(await deadLetters()).toEqual([
      expect.objectContaining({ subject: 'deadletter.clusters.v1.lifecycle.t1.c9', count: 1 }),
    ]);
  });
});
