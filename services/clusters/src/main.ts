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
  startSubgraphServer,
  subgraphServerEnv,
} from '@fleetgraph/kit';
import {
  CLUSTER_EVENTS_STREAM,
  CLUSTER_STATE_STREAM,
  clusterConditions,
  clusterEvent,
  clusterLifecycle,
  fleetCluster,
} from '@fleetgraph/schema';
import { ClusterBootstrap } from './adapters/bootstrap.js';
import { serveAgentCredentials, serveClusterRequests } from './adapters/cluster.bus.js';
import { ClusterSecretsRepository } from './adapters/cluster-secrets.repo.js';
import { createSealer } from './bootstrap/sealed.js';
import { ClusterRepository } from './adapters/cluster.repo.js';
import { forgetDeletedClusters } from './adapters/fleet.js';
import { natsClusterRequests } from './adapters/cluster.requests.js';
import { ProviderRegistry } from './adapters/providers.js';
import { readEnv } from './env.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import { createClustersMetrics } from './adapters/metrics.js';
import { buildClustersSchema } from './schema/index.js';
import { startWebhooks } from './webhooks/index.js';

async function main() {
  // First: spans of everything after are recorded (when OTEL_EXPORTER_OTLP_ENDPOINT is set).
  const tracing = await startTracing('clusters');
  const env = readEnv();
  const log = createLogger('clusters', env.LOG_LEVEL);
  const store = await createStore({ mongodbUri: env.MONGODB_URI, dataDir: env.DATA_DIR, service: 'clusters' });
  const bus = await createBus({
    url: env.NATS_URL,
    name: 'clusters',
    log,
    credentials: natsCredentials(env),
    streamReplicas: env.NATS_STREAM_REPLICAS,
  });
  await bus.ensureStreams([CLUSTER_EVENTS_STREAM, CLUSTER_STATE_STREAM]);
  const outbox = await createOutbox({
    store,
    bus,
    log,
    events: [clusterEvent, clusterConditions, clusterLifecycle, fleetCluster],
  });
  const clusters = await ClusterRepository.open(store, outbox);
  forgetDeletedClusters(outbox, bus, log);
  const providers = new ProviderRegistry({
    localCloudUrl: env.LOCAL_CLOUD_URL,
    azure: { subscriptionId: env.AZURE_SUBSCRIPTION_ID, resourceGroup: env.AZURE_RESOURCE_GROUP },
  });
  serveClusterRequests(bus, clusters);
  const sealer = createSealer(env.CLUSTER_SECRETS_KEY);
  const secrets = await ClusterSecretsRepository.open(store, sealer);
  const natsKeys = env.NATS_ACCOUNT_SEED ? { accountSeed: env.NATS_ACCOUNT_SEED } : null;
  if (natsKeys) serveAgentCredentials(bus, clusters, natsKeys, env.AGENT_CREDENTIALS_TTL);
  const bootstrap = new ClusterBootstrap({
    secrets,
    sealer,
    agentNatsUrl: env.AGENT_NATS_URL ?? env.NATS_URL,
    agentImage: env.AGENT_IMAGE,
    natsKeys,
    agentBootCredentialsSeconds: env.AGENT_BOOT_CREDENTIALS_TTL,
    bootstrapTokenSeconds: env.BOOTSTRAP_TOKEN_TTL,
  });
  const orchestrator = new Orchestrator({
    repo: clusters,
    providers,
    requests: natsClusterRequests(bus),
    bootstrap,
    log,
    pollMs: env.RECONCILE_POLL_MS,
    progressMs: env.RECONCILE_PROGRESS_MS,
    resyncMs: env.RECONCILE_RESYNC_MS,
    backoff: { baseMs: env.RECONCILE_BACKOFF_BASE_MS, capMs: env.RECONCILE_BACKOFF_CAP_MS },
    leaseMs: env.RECONCILE_LEASE_MS,
    concurrency: env.RECONCILE_CONCURRENCY,
  });
  const webhooks = await startWebhooks({ env, store, bus, clusters, sealer, log });
  const server = await startSubgraphServer({
    name: 'clusters',
    schema: await buildClustersSchema({
      clusters,
      secrets,
      providers,
      bus,
      poke: () => orchestrator.poke(),
      proxy: {
        clouds: env.CLOUDS,
        awsRegions: env.AWS_REGIONS,
        localCloudUrl: env.LOCAL_CLOUD_URL,
        natsUrl: env.NATS_URL,
        publicUrl: env.PUBLIC_URL,
        registries: env.REGISTRIES,
      },
      webhooks: webhooks.resolverDeps,
    }),
    log,
    ...subgraphServerEnv(env),
    readiness: busAndStoreReadiness(bus, store),
    // /metrics: the process's (NATS, HTTP, steps, phases, cloud calls, webhooks) and the orchestrator's queue.
    metrics: [createClustersMetrics(orchestrator)],
  });
  outbox.start();
  orchestrator.start();
  webhooks.start();
  onShutdown(log, [
    () => server.close(),
    () => orchestrator.stop(),
    () => webhooks.stop(),
    () => outbox.stop(),
    () => bus.close(),
    () => providers.close(),
    () => store.close(),
    () => tracing.shutdown(),
  ]);
}

main().catch(exitOnStartupFailure(createLogger('clusters')));
