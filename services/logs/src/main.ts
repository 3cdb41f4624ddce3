import {
  busAndStoreReadiness,
  natsCredentials,
  publicBase,
  createBus,
  createLogger,
  createStore,
  exitOnStartupFailure,
  onShutdown,
  startTracing,
  startSubgraphServer,
  subgraphServerEnv,
} from '@fleetgraph/kit';
import { createBlobStore } from './adapters/create-blob-store.js';
import { collectionSettings, readEnv } from './env.js';
import { buildLogsSchema } from './schema/index.js';
import { startLogsService } from './service.js';

async function main() {
  // First: spans of everything after are recorded (when OTEL_EXPORTER_OTLP_ENDPOINT is set).
  const tracing = await startTracing('logs');
  const env = readEnv();
  const log = createLogger('logs', env.LOG_LEVEL);
  const store = await createStore({ mongodbUri: env.MONGODB_URI, dataDir: env.DATA_DIR, service: 'logs' });
  const blobs = await createBlobStore({ mongodbUri: env.MONGODB_URI, dataDir: env.DATA_DIR });
  const bus = await createBus({
    url: env.NATS_URL,
    name: 'logs',
    log,
    credentials: natsCredentials(env),
    streamReplicas: env.NATS_STREAM_REPLICAS,
  });
  const service = await startLogsService({
    store,
    bus,
    blobs,
    log,
    links: {
      secret: env.LOGS_DOWNLOAD_SECRET,
      publicUrl: publicBase(env.PUBLIC_URL),
      ttlSeconds: env.LOGS_DOWNLOAD_TTL_SECONDS,
    },
    settings: collectionSettings(env),
  });
  const server = await startSubgraphServer({
    name: 'logs',
    schema: await buildLogsSchema(service),
    log,
    ...subgraphServerEnv(env),
    routes: service.routes,
    readiness: [...busAndStoreReadiness(bus, store), { name: 'blobs', check: () => blobs.ping() }],
  });
  // Collections stop first (their bundles end FAILED and their agents are told), then downloads drain.
  onShutdown(log, [
    () => service.stop(),
    () => server.close(),
    () => bus.close(),
    () => blobs.close(),
    () => store.close(),
    () => tracing.shutdown(),
  ]);
}

main().catch(exitOnStartupFailure(createLogger('logs')));
