import {
  busAndStoreReadiness,
  natsCredentials,
  createBus,
  createLogger,
  createStore,
  exitOnStartupFailure,
  onShutdown,
  startTracing,
  startSubgraphServer,
  subgraphServerEnv,
} from '@fleetgraph/kit';
import { createClouds } from './adapters/clouds.js';
import { cloudsConfig, readEnv, workerOptions } from './env.js';
import { buildImagesSchema } from './schema/index.js';
import { startImagesService } from './service.js';

async function main() {
  // First: spans of everything after are recorded (when OTEL_EXPORTER_OTLP_ENDPOINT is set).
  const tracing = await startTracing('images');
  const env = readEnv();
  const log = createLogger('images', env.LOG_LEVEL);
  const store = await createStore({ mongodbUri: env.MONGODB_URI, dataDir: env.DATA_DIR, service: 'images' });
  const bus = await createBus({
    url: env.NATS_URL,
    name: 'images',
    log,
    credentials: natsCredentials(env),
    streamReplicas: env.NATS_STREAM_REPLICAS,
  });
  const clouds = createClouds(cloudsConfig(env));
  const service = await startImagesService({ store, bus, clouds, log, worker: workerOptions(env) });
  const server = await startSubgraphServer({
    name: 'images',
    schema: await buildImagesSchema({ images: service.images }),
    log,
    ...subgraphServerEnv(env),
    readiness: busAndStoreReadiness(bus, store),
  });
  onShutdown(log, [
    () => server.close(),
    () => service.stop(),
    () => bus.close(),
    () => clouds.close(),
    () => store.close(),
    () => tracing.shutdown(),
  ]);
}

main().catch(exitOnStartupFailure(createLogger('images')));
