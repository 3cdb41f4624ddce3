import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBus, createLogger, type Bus } from '@fleetgraph/kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { clusterNodes, startHarness, TEST_DOWNLOAD_SECRET, until, type Harness } from './testing.js';
import { FileBlobStore } from './adapters/file-blob-store.js';
import { type LogsService, startLogsService } from './service.js';

// One graphql for everything (see logs.test.ts): the one Node loads for type-graphql.
vi.mock('graphql', () => createRequire(import.meta.url)('graphql'));

/**
 * Two replicas of the logs service on one store: the collection limits are the service's, not
 * each replica's. With one collection at a time configured, requests taken by both replicas
 * run one after another.
 */
describe('log collection limits across replicas', () => {
  let h: Harness;
  let second: LogsService;
  let secondBus: Bus;
  let dir: string;
  /** Collections running at once across both replicas, at every start and end. */
  let running = 0;
  let peak = 0;
  const onCollection = (event: { type: 'started' | 'finished' }) => {
    running += event.type === 'started' ? 1 : -1;
    peak = Math.max(peak, running);
  };
  const settings = { maxConcurrent: 1, maxConcurrentPerCluster: 1, slotRetryMs: 50 };

  beforeAll(async () => {
    h = await startHarness({ settings, service: { onCollection, replicaId: 'logs-1' } });
    const log = createLogger('logs-replica-test', 'silent');
    secondBus = await createBus({
      url: h.nats.url,
      name: 'logs-2',
      log,
      credentials: await h.nats.credentials('logs-2'),
    });
    dir = await mkdtemp(join(tmpdir(), 'fleetgraph-logs-replica-'));
    second = await startLogsService({
      store: h.store,
      bus: secondBus,
      blobs: await FileBlobStore.open(join(dir, 'blobs')),
      log,
      links: { secret: TEST_DOWNLOAD_SECRET, publicUrl: h.origin, ttlSeconds: 300 },
      settings: {
        ...settings,
        agentTimeoutMs: 1_000,
        idleTimeoutMs: 2_000,
        window: 4,
        chunkBytes: 16 * 1024,
        sweepMs: 3_600_000,
      },
      replicaId: 'logs-2',
      onCollection,
    });
  });
  afterAll(async () => {
    await second?.collections.stop();
    await second?.outbox.stop();
    await secondBus?.close();
    await h?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('should run at most the configured number of collections in the whole service, and finish every one', async () => {
    const clusters = [h.addCluster(), h.addCluster(), h.addCluster(), h.addCluster()];
    for (const cluster of clusters)
      await h.startAgent(cluster, { nodes: clusterNodes(cluster.name, 1), logs: { lines: 3_000 } });
    const editor = h.identity({ tenantId: clusters[0]!.tenantId, projects: { [clusters[0]!.projectId]: 'editor' } });
    // Two requests on each replica, at once.
    const outcomes = await Promise.all(
      clusters.map((cluster, i) =>
        (i % 2 === 0 ? h.service : second).collections.request(editor, { clusterId: cluster.id }),
      ),
    );
    const ids = outcomes.map((o) => (o.kind === 'requested' ? o.bundle.id : `refused: ${JSON.stringify(o)}`));
    const settled = await Promise.all(
      ids.map((id) =>
        until(
          `bundle ${id} settled`,
          async () => {
            const bundle = await h.service.bundles.get(id);
            return (bundle?.status === 'READY' || bundle?.status === 'FAILED') && bundle;
          },
          30_000,
        ),
      ),
    );
    expect(settled.map((b) => b.status)).toEqual(['READY', 'READY', 'READY', 'READY']);
    expect(peak).toBe(1);
  });
});
