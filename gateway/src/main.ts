import { createBus, createLogger, natsCredentials, exitOnStartupFailure, onShutdown } from '@fleetgraph/kit/core';
import { readEnv } from './env.js';
import { startGateway } from './gateway.js';
import { loadSupergraph } from './supergraph.js';

async function main() {
  const env = readEnv();
  const log = createLogger('gateway', env.LOG_LEVEL);
  const bus = await createBus({
    url: env.NATS_URL,
    name: 'gateway',
    log,
    credentials: natsCredentials(env),
    streamReplicas: env.NATS_STREAM_REPLICAS,
  });
  const gateway = await startGateway({
    supergraphSdl: await loadSupergraph(env.SUPERGRAPH_PATH),
    host: env.HOST,
    port: env.PORT,
    jwtSecret: env.AUTH_JWT_SECRET,
    maxTokenLifetimeSeconds: env.AUTH_MAX_TOKEN_LIFETIME,
    internalSecret: env.INTERNAL_AUTH_SECRET,
    production: env.NODE_ENV === 'production',
    log,
    bus,
    subscriptions: {
      bufferLimitBytes: env.SUBSCRIPTION_BUFFER_BYTES,
      maxSubscriptionsPerConnection: env.SUBSCRIPTION_MAX_PER_CONNECTION,
      patternConsumerAt: env.SUBSCRIPTION_PATTERN_CONSUMER_AT,
    },
  });
  onShutdown(log, [() => gateway.close(), () => bus.close()]);
}

main().catch(exitOnStartupFailure(createLogger('gateway')));
