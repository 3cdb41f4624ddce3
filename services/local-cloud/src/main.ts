import { ConfigError, createBus, createLogger, natsCredentials, startTracing, type Bus } from '@fleetgraph/kit/core';
import { createStore } from '@fleetgraph/kit/store';
import { SimulatedAgents } from './agents.js';
import { loadEnv, type LocalCloudEnv } from './env.js';
import { startLocalCloud } from './local-cloud.js';

async function main(): Promise<void> {
  // First: spans of everything after are recorded (when OTEL_EXPORTER_OTLP_ENDPOINT is set).
  const tracing = await startTracing('local-cloud');
  let env: LocalCloudEnv;
  try {
    env = loadEnv();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`local-cloud: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger('local-cloud', env.LOG_LEVEL);
  // The local cloud stands outside the platform, as a real cloud does: its own SQLite file,
  // never the platform's MongoDB.
  const store = await createStore({ dataDir: env.DATA_DIR, service: 'local-cloud' });
  const cloud = await startLocalCloud({
    store,
    port: env.PORT,
    host: env.HOST,
    speed: env.LOCAL_CLOUD_SPEED,
    vcpuLimit: env.LOCAL_CLOUD_VCPU_LIMIT,
    faults: { errorRate: env.LOCAL_CLOUD_FAULT_RATE, throttlePerSecond: env.LOCAL_CLOUD_THROTTLE_RPS },
    requireUserData: env.LOCAL_CLOUD_REQUIRE_USER_DATA,
    logger,
  });
  // Each cluster's machines run its management agent: started from the agent manifest in the
  // first control-plane node's user data, connected as its own NATS user. Clusters whose
  // machines have no user data (allowed while LOCAL_CLOUD_REQUIRE_USER_DATA is false) get one
  // from their tags, on the local cloud's own connection to NATS_URL.
  let tagBus: Bus | undefined;
  if (env.NATS_URL && !env.LOCAL_CLOUD_REQUIRE_USER_DATA) {
    tagBus = await createBus({
      url: env.NATS_URL,
      name: 'local-cloud-agents',
      log: logger,
      credentials: natsCredentials(env),
    });
  }
  const agents = new SimulatedAgents({
    log: logger,
    speed: env.LOCAL_CLOUD_SPEED,
    credentials: cloud.agentCredentials,
    ...(tagBus ? { tagBus } : {}),
  });
  agents.follow(cloud.machineEvents);
  const now = new Date().toISOString();
  for (const machine of cloud.runningMachines()) agents.up(machine, now);
  logger.info(
    {
      url: cloud.url,
      speed: env.LOCAL_CLOUD_SPEED,
      vcpuLimit: env.LOCAL_CLOUD_VCPU_LIMIT,
      requireUserData: env.LOCAL_CLOUD_REQUIRE_USER_DATA,
      dataDir: env.DATA_DIR,
    },
    'local cloud started',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'local cloud stopping');
    await agents.stop();
    await tagBus?.close();
    await cloud.close();
    await store.close();
    await tracing.shutdown();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error('local-cloud failed to start', error);
  process.exit(1);
});
