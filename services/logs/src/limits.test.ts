import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { SimulatedLogSource, type LogSource, type SimulatedSource } from '@fleetgraph/agent';
import { createLogger } from '@fleetgraph/kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { collectionSources } from './adapters/collection-sources.js';
import { LogCollections, type CollectionSettings } from './app/collections.js';
import type { LogBundle } from './domain/bundle.js';
import { startHarness, until, type Harness } from './testing.js';

// One graphql instance for everything here (see logs.test.ts).
vi.mock('graphql', () => createRequire(import.meta.url)('graphql'));

const log = createLogger('logs-limits-test', 'silent');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Simulated logs that take `delayMs` per file, so that collections overlap long enough to observe. */
const slow =
  (delayMs: number) =>
  (simulated: SimulatedSource): LogSource => {
    const inner = new SimulatedLogSource(simulated, { lines: 200 });
    return {
      open(selection) {
        const snapshot = inner.open(selection);
        return {
          ...snapshot,
          async *files() {
            for (const file of snapshot.files() as Iterable<{ path: string; lines(): Iterable<string> }>) {
              await sleep(delayMs);
              yield file;
            }
          },
        };
      },
    };
  };

describe('collection limits', () => {
  let h: Harness;
  const running = new Map<string, LogBundle>();
  let peakTotal = 0;
  const peakPerCluster = new Map<string, number>();
  const order: string[] = [];

  beforeAll(async () => {
    h = await startHarness({
      settings: { maxConcurrent: 2, maxConcurrentPerCluster: 1, maxQueued: 10 },
      service: {
        onCollection: ({ type, bundle }) => {
          order.push(`${type}:${bundle.id}`);
          if (type === 'finished') return void running.delete(bundle.id);
          running.set(bundle.id, bundle);
          peakTotal = Math.max(peakTotal, running.size);
          const inCluster = [...running.values()].filter((b) => b.clusterId === bundle.clusterId).length;
          peakPerCluster.set(bundle.clusterId, Math.max(peakPerCluster.get(bundle.clusterId) ?? 0, inCluster));
        },
      },
    });
  });

  afterAll(async () => {
    await h?.stop();
  });

  const editor = () => h.identity({ tenantId: 'tenant-a', projects: { 'project-a': 'editor' } });
  const nodeLogsOnly = { kubeSystem: false, namespaceLogs: false, nodeLogs: true };
  const settled = (id: string) =>
    until(`bundle ${id} settled`, async () => {
      const b = await h.service.bundles.get(id);
      return (b?.status === 'READY' || b?.status === 'FAILED') && b;
    });
  /** A second collections runner over the same store and NATS, with its own settings. */
  const runner = (settings: Partial<CollectionSettings>) =>
    new LogCollections({
      bundles: h.service.bundles,
      blobs: h.service.blobs,
      ...collectionSources(h.bus),
      log,
      settings: { agentTimeoutMs: 1_000, idleTimeoutMs: 2_000, window: 4, chunkBytes: 16 * 1024, ...settings },
    });

  it('should run at most two collections at once and one per cluster, queueing the rest', async () => {
    const a = h.addCluster();
    const b = h.addCluster();
    const c = h.addCluster();
    for (const cluster of [a, b, c]) await h.startAgent(cluster, { source: slow(40) });

    const requests = await Promise.all(
      [a, a, b, c].map((cluster) =>
        h.service.collections.request(editor(), { clusterId: cluster.id, ...nodeLogsOnly }),
      ),
    );
    const ids = requests.map((r) =>
      r.kind === 'requested' ? r.bundle.id : expect.fail(`not requested: ${JSON.stringify(r)}`),
    );
    expect(requests.map((r) => r.kind === 'requested' && r.bundle.status)).toEqual([
      'REQUESTED',
      'REQUESTED',
      'REQUESTED',
      'REQUESTED',
    ]);

    const outcomes = await Promise.all(ids.map(settled));
    expect(outcomes.map((o) => o.status)).toEqual(['READY', 'READY', 'READY', 'READY']);
    expect(peakTotal).toBe(2);
    expect([...peakPerCluster.values()]).toEqual([1, 1, 1]);
    // The second bundle of cluster a waited for the first.
    expect(order.indexOf(`started:${ids[1]}`)).toBeGreaterThan(order.indexOf(`finished:${ids[0]}`));
  });

  it('should refuse requests beyond the queue with TOO_MANY_REQUESTS', async () => {
    const cluster = h.addCluster();
    await h.startAgent(cluster, { source: slow(40) });
    const limited = runner({ maxConcurrent: 1, maxConcurrentPerCluster: 1, maxQueued: 1 });
    const outcomes = [];
    for (let i = 0; i < 3; i++)
      outcomes.push(await limited.request(editor(), { clusterId: cluster.id, ...nodeLogsOnly }));
    expect(outcomes.map((o) => o.kind)).toEqual(['requested', 'requested', 'problems']);
    expect(outcomes[2]).toEqual({
      kind: 'problems',
      problems: [
        {
          code: 'TOO_MANY_REQUESTS',
          message: 'too many log bundles are waiting to be collected; try again later',
          field: ['input'],
        },
      ],
    });
    await Promise.all(outcomes.slice(0, 2).map((o) => settled((o as { bundle: LogBundle }).bundle.id)));
    await limited.stop();
  });

  it('should fail a bundle whose archive grows past the maximum size, and keep nothing of it', async () => {
    const cluster = h.addCluster();
    await h.startAgent(cluster);
    const small = runner({ maxArchiveBytes: 64 * 1024 });
    const outcome = await small.request(editor(), { clusterId: cluster.id });
    const bundle = await settled((outcome as { bundle: LogBundle }).bundle.id);
    expect(bundle).toMatchObject({
      status: 'FAILED',
      fileName: null,
      sizeBytes: null,
      message: 'the archive grew past the maximum size of 64 KiB; collect fewer parts',
    });
    expect(await h.service.blobs.open(bundle.id)).toBeNull();
    await small.stop();
  });

  it('should fail queued and running collections when it stops, and tell the agents', async () => {
    const cluster = h.addCluster();
    const other = h.addCluster();
    const agentOutcomes: { bundleId: string; ok: boolean; error?: string }[] = [];
    for (const c of [cluster, other])
      await h.startAgent(c, { source: slow(200), part: { onFinished: (o) => agentOutcomes.push(o) } });
    const stopping = runner({ maxConcurrent: 1 });
    const first = (await stopping.request(editor(), { clusterId: cluster.id, ...nodeLogsOnly })) as {
      bundle: LogBundle;
    };
    const queued = (await stopping.request(editor(), { clusterId: other.id, ...nodeLogsOnly })) as {
      bundle: LogBundle;
    };
    await until(
      'the first collection running',
      async () => (await h.service.bundles.get(first.bundle.id))?.status === 'COLLECTING',
    );
    await stopping.stop();
    const message = 'the logs service stopped before the collection finished; request the logs again';
    expect(await h.service.bundles.get(first.bundle.id)).toMatchObject({ status: 'FAILED', message });
    expect(await h.service.bundles.get(queued.bundle.id)).toMatchObject({ status: 'FAILED', message });
    await until('the agent stopped', async () => agentOutcomes.find((o) => o.bundleId === first.bundle.id));
    expect(agentOutcomes.find((o) => o.bundleId === first.bundle.id)).toEqual({
      bundleId: first.bundle.id,
      ok: false,
      error: `the logs service cancelled the collection: ${message}`,
    });
  });

  it('should fail the bundles of a replica that stopped renewing its lease, and delete expired bundles and archives', async () => {
    const now = new Date();
    const bundle = (id: string, overrides: Partial<LogBundle>): LogBundle => ({
      id,
      tenantId: 'tenant-a',
      projectId: 'project-a',
      clusterId: 'cls-gone',
      clusterName: 'gone',
      status: 'COLLECTING',
      message: null,
      parts: { kubeSystem: true, namespaceLogs: true, nodeLogs: true },
      requestedBy: 'u',
      requestedAt: now.toISOString(),
      startedAt: now.toISOString(),
      readyAt: null,
      fileName: null,
      sizeBytes: null,
      expiresAt: new Date(now.getTime() + 3600_000).toISOString(),
      owner: 'replica-that-died',
      leaseUntil: now.getTime() - 1,
      ...overrides,
    });
    const stale = await h.service.bundles.insert(bundle('lb_stale', {}));
    const held = await h.service.bundles.insert(bundle('lb_held', { leaseUntil: now.getTime() + 60_000 }));
    const expired = await h.service.bundles.insert(
      bundle('lb_expired', {
        status: 'READY',
        owner: null,
        leaseUntil: null,
        expiresAt: new Date(now.getTime() - 1).toISOString(),
      }),
    );
    await h.service.blobs.write(expired.id, Readable.from([Buffer.from('PK old')]), {
      expiresAt: new Date(now.getTime() - 1),
    });

    await h.service.collections.sweep(now);

    expect(await h.service.bundles.get(stale.id)).toMatchObject({
      status: 'FAILED',
      message: 'the collection was interrupted: the logs service replica running it stopped; request the logs again',
    });
    expect(await h.service.bundles.get(held.id)).toMatchObject({ status: 'COLLECTING' });
    expect(await h.service.bundles.get(expired.id)).toBeNull();
    expect(await h.service.blobs.open(expired.id, new Date(0))).toBeNull();
  });
});
