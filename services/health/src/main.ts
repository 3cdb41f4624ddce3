import {
  busAndStoreReadiness,
  natsCredentials,
  createBus,
  createLogger,
  createOutbox,
  createStore,
  exitOnStartupFailure,
  onShutdown,
  startTracing,
  startLeadership,
  startSubgraphServer,
  subgraphServerEnv,
  type Listening,
} from '@fleetgraph/kit';
import { clusterHealthChanged, HEALTH_METRICS_STREAM, HEALTH_STATUS_STREAM } from '@fleetgraph/schema';
import { followClusters } from './adapters/clusters.nats.js';
import { NatsHealthPublisher } from './adapters/health.events.js';
import { HealthRepository } from './adapters/health.repo.js';
import { createHealthMetrics, reportLag } from './adapters/metrics.js';
import { serveNodes } from './adapters/nodes.nats.js';
import { subscribeReports } from './adapters/reports.nats.js';
import { readEnv } from './env.js';
import { HealthIngest } from './ingest/ingest.js';
import type { HealthPublisher } from './ingest/ports.js';
import { ClusterRegistry } from './ingest/registry.js';
import { buildHealthSchema } from './schema/index.js';

async function main() {
  // First: spans of everything after are recorded (when OTEL_EXPORTER_OTLP_ENDPOINT is set).
  const tracing = await startTracing('health');
  const env = readEnv();
  const log = createLogger('health', env.LOG_LEVEL);
  const store = await createStore({ mongodbUri: env.MONGODB_URI, dataDir: env.DATA_DIR, service: 'health' });
  const bus = await createBus({
    url: env.NATS_URL,
    name: 'health',
    log,
    credentials: natsCredentials(env),
    streamReplicas: env.NATS_STREAM_REPLICAS,
  });
  await bus.ensureStreams([HEALTH_STATUS_STREAM, HEALTH_METRICS_STREAM]);
  const repo = await HealthRepository.open(store);
  const registry = new ClusterRegistry();
  const outbox = await createOutbox({ store, bus, log, events: [clusterHealthChanged] });
  const nats = new NatsHealthPublisher(bus, outbox, store, log);
  outbox.start();
  // Every replica takes every report and judges it alike, so that each answers the same; the
  // one holding the role writes the store and publishes changes and samples.
  let ingest: HealthIngest | undefined;
  const leaseMs = env.HEALTH_LEADER_LEASE;
  const leadership = await startLeadership({
    store,
    role: 'health-ingest',
    log,
    leaseMs,
    onChange: (leading) => {
      if (leading) ingest?.tookOver(2 * leaseMs);
    },
  });
  const publisher: HealthPublisher = {
    health: (message) => {
      if (leadership.leading) nats.health(message);
    },
    usage: (message) => {
      if (leadership.leading) nats.usage(message);
    },
    fleet: (message) => {
      if (leadership.leading) nats.fleet(message);
    },
    forget: (cluster) => {
      if (leadership.leading) nats.forget(cluster);
    },
  };
  ingest = new HealthIngest({
    registry,
    store: repo,
    publisher,
    writing: () => leadership.leading,
    lag: reportLag,
    log,
    policy: {
      heartbeatTimeoutMs: env.HEALTH_HEARTBEAT_TIMEOUT,
      lateAfterIntervals: env.HEALTH_LATE_AFTER_INTERVALS,
      nodeConditionThresholdMs: env.HEALTH_NODE_CONDITION_THRESHOLD,
      metricsWindowMs: env.HEALTH_METRICS_WINDOW,
      cpuThreshold: env.HEALTH_CPU_THRESHOLD,
      memoryThreshold: env.HEALTH_MEMORY_THRESHOLD,
      diskThreshold: env.HEALTH_DISK_THRESHOLD,
    },
    sampleBucketMs: env.HEALTH_SAMPLE_BUCKET,
    persistEveryMs: env.HEALTH_PERSIST_EVERY,
    tickMs: env.HEALTH_TICK,
  });

  const restored = await ingest.restore();
  const clusters = followClusters({
    bus,
    registry,
    onRemoved: (id) =>
      void ingest
        .forget(id)
        .catch((error) => log.error({ err: error, clusterId: id }, 'could not forget a deleted cluster')),
  });
  // Reports are taken once every existing cluster is known, so that none is dropped as unknown.
  let reports: Listening | undefined;
  let stopping = false;
  void clusters.caughtUp.then(async () => {
    const pruned = await ingest.prune();
    if (stopping) return;
    log.info({ registered: registry.size, restored, pruned }, 'cluster registry caught up; taking reports');
    reports = subscribeReports(bus, ingest, { recovery: { registry, log } });
  });

  const timers = [
    setInterval(() => ingest.tick(), env.HEALTH_TICK),
    setInterval(() => void ingest.flush(), env.HEALTH_FLUSH_INTERVAL),
    setInterval(
      () =>
        void ingest
          .dropSamplesBefore(Date.now() - env.HEALTH_SAMPLE_RETENTION)
          .catch((error) => log.error({ err: error }, 'sample retention failed')),
      Math.min(60_000, env.HEALTH_SAMPLE_BUCKET),
    ),
  ];
  const metrics = createHealthMetrics({
    ingest: () => ingest.stats(),
    health: () => ingest.healthCounts(),
    registered: () => registry.size,
    publishFailures: () => nats.failures,
  });

  const nodes = serveNodes(bus, ingest);

  const server = await startSubgraphServer({
    name: 'health',
    schema: await buildHealthSchema({ ingest, registry, retentionMs: env.HEALTH_SAMPLE_RETENTION }),
    log,
    ...subgraphServerEnv(env),
    readiness: [
      ...busAndStoreReadiness(bus, store),
      {
        name: 'clusters',
        check: async () => {
          if (!clusters.isCaughtUp) throw new Error('still reading cluster lifecycle events');
        },
      },
    ],
    // /metrics: the process's (NATS, HTTP, the report lag) and this service's own.
    metrics: [metrics],
  });
  onShutdown(log, [
    () => server.close(),
    async () => {
      stopping = true;
      reports?.unsubscribe();
      nodes.unsubscribe();
    },
    () => clusters.stop(),
    async () => {
      for (const timer of timers) clearInterval(timer);
      await ingest.drain();
      await nats.flush();
      await outbox.stop();
      await leadership.stop();
    },
    () => bus.close(),
    () => store.close(),
    () => tracing.shutdown(),
  ]);
}

main().catch(exitOnStartupFailure(createLogger('health')));
