import { busAndStoreReadiness, createBus, createLogger, createStore, exitOnStartupFailure, onShutdown, startSubgraphServer, subgraphServerEnv } from '@fleetgraph/kit';
import { PROFILES_STREAM } from '@fleetgraph/schema';
import { serveProfileRequests } from './adapters/profile.bus.js';
import { ProfileRepository } from './adapters/profile.repo.js';
import { readEnv } from './env.js';
import { buildProfilesSchema } from './schema/index.js';

async function main() {
  const env = readEnv();
  const log = createLogger('profiles', env.LOG_LEVEL);
  const store = await createStore({ mongodbUri: env.MONGODB_URI, dataDir: env.DATA_DIR, service: 'profiles' });
  const bus = await createBus({ url: env.NATS_URL, name: 'profiles', log });
  await bus.ensureStreams([PROFILES_STREAM]);
  const profiles = await ProfileRepository.open(store);
  serveProfileRequests(bus, profiles);
  const server = await startSubgraphServer({
    name: 'profiles',
    schema: await buildProfilesSchema({ profiles, bus }),
    log,
    ...subgraphServerEnv(env),
    readiness: busAndStoreReadiness(bus, store),
  });
  onShutdown(log, [() => server.close(), () => bus.close(), () => store.close()]);
}

main().catch(exitOnStartupFailure(createLogger('profiles')));
