import {
  createBus,
  createLogger,
  natsCredentials,
  exitOnStartupFailure,
  onShutdown,
  startTracing,
} from '@fleetgraph/kit/core';
import { dashboardOptions, oidcOptions, readEnv } from './env.js';
import { startGateway } from './gateway.js';
import { loadTrustedDocuments } from './trusted-documents.js';
import { loadSupergraph } from './supergraph.js';

async function main() {
  // First: spans of everything after are recorded (when OTEL_EXPORTER_OTLP_ENDPOINT is set).
  const tracing = await startTracing('gateway');
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
    metricsPort: env.METRICS_PORT,
    jwtSecret: env.AUTH_JWT_SECRET,
    oidc: oidcOptions(env),
    maxTokenLifetimeSeconds: env.AUTH_MAX_TOKEN_LIFETIME,
    apiKeys: { cacheTtlMs: env.AUTH_API_KEY_CACHE_TTL * 1000 },
    internalSecret: env.INTERNAL_AUTH_SECRET,
    production: env.NODE_ENV === 'production',
    log,
    bus,
    subscriptions: {
      bufferLimitBytes: env.SUBSCRIPTION_BUFFER_BYTES,
      maxSubscriptionsPerConnection: env.SUBSCRIPTION_MAX_PER_CONNECTION,
      patternConsumerAt: env.SUBSCRIPTION_PATTERN_CONSUMER_AT,
      authorizationMemoryMs: env.SUBSCRIPTION_AUTHORIZATION_MEMORY_MS,
    },
    rateLimit: { perMinute: env.RATE_LIMIT_PER_MINUTE, anonymousPerMinute: env.RATE_LIMIT_ANONYMOUS_PER_MINUTE },
    trustedProxyHops: env.TRUSTED_PROXY_HOPS,
    trustedDocuments: await loadTrustedDocuments(env.TRUSTED_DOCUMENTS, env.TRUSTED_DOCUMENTS_MANIFEST, log),
    corsOrigins: env.CORS_ORIGINS,
    shareInflightFetches: env.SUBGRAPH_SHARE_INFLIGHT === 'on',
    dashboard: dashboardOptions(env),
  });
  onShutdown(log, [() => gateway.close(), () => bus.close(), () => tracing.shutdown()]);
}

main().catch(exitOnStartupFailure(createLogger('gateway')));
