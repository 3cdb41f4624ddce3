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
import { PROFILES_STREAM, profileCreated } from '@fleetgraph/schema';
import { serveProfileRequests } from './adapters/profile.bus.js';
import { ProfileRepository } from './adapters/profile.repo.js';
import { natsRevocationAnnouncer, serveApiKeyRequests } from './apikeys/apikey.bus.js';
import { ApiKeyRepository } from './apikeys/apikey.repo.js';
import { readEnv } from './env.js';
import { buildProfilesSchema } from './schema/index.js';

async function main() {
  // First: spans of everything after are recorded (when OTEL_EXPORTER_OTLP_ENDPOINT is set).
  const tracing = await startTracing('profiles');
  const env = readEnv();
  const log = createLogger('profiles', env.LOG_LEVEL);
  const store = await createStore({ mongodbUri: env.MONGODB_URI, dataDir: env.DATA_DIR, service: 'profiles' });
  const bus = await createBus({
    url: env.NATS_URL,
    name: 'profiles',
    log,
    credentials: natsCredentials(env),
    streamReplicas: env.NATS_STREAM_REPLICAS,
  });
  await bus.ensureStreams([PROFILES_STREAM]);
  const outbox = await createOutbox({ store, bus, log, events: [profileCreated] });
  const profiles = await ProfileRepository.open(store, outbox);
  const apiKeys = await ApiKeyRepository.open(store);
  serveProfileRequests(bus, profiles);
  serveApiKeyRequests(bus, apiKeys);
  const server = await startSubgraphServer({
    name: 'profiles',
    schema: await buildProfilesSchema({ profiles, apiKeys, announceRevocation: natsRevocationAnnouncer(bus, log) }),
    log,
    ...subgraphServerEnv(env),
    readiness: busAndStoreReadiness(bus, store),
  });
  outbox.start();
  onShutdown(log, [
    () => server.close(),
    () => outbox.stop(),
    () => bus.close(),
    () => store.close(),
    () => tracing.shutdown(),
  ]);
}

main().catch(exitOnStartupFailure(createLogger('profiles')));
