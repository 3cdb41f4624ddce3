import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type Express } from 'express';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import type { Registry } from 'prom-client';
import { AuthenticationError, createInternalIdentityVerifier, INTERNAL_IDENTITY_HEADER } from '../auth/tokens.js';
import { formatError, jsonBodyErrors, mountHealth, requestIds, type ReadinessCheck } from './health.js';
import { meterRequests } from './http-metrics.js';
import { noteRequest, observeRequests, useOperationNotes } from './observe.js';
import type { Identity } from '../auth/identity.js';
import { currentRequestId, type Logger } from '../log.js';
import { metricsHandler } from '../metrics.js';

/** What every subgraph resolver receives. */
export interface SubgraphContext {
  identity: Identity;
  requestId: string;
  log: Logger;
}

/** The options of startSubgraphServer that every service takes from its environment (serviceEnvShape). */
export function subgraphServerEnv(env: { HOST: string; PORT: number; INTERNAL_AUTH_SECRET: string; NODE_ENV: string }) {
  return {
    host: env.HOST,
    port: env.PORT,
    internalSecret: env.INTERNAL_AUTH_SECRET,
    introspection: env.NODE_ENV !== 'production',
  };
}

export interface SubgraphServerOptions {
  name: string;
  schema: GraphQLSchema;
  log: Logger;
  host: string;
  port: number;
  internalSecret: string;
  /** Checked by GET /readyz: NATS, the store, ... */
  readiness: readonly ReadinessCheck[];
  /** Whether introspection is allowed (development). @default false */
  introspection?: boolean;
  /** Extra HTTP routes (e.g. a download endpoint), mounted before /graphql. */
  routes?: (app: Express) => void;
  /**
   * Registries of the service's own instance metrics (`createMetricsRegistry`), served at
   * GET /metrics after the process's. @default none
   */
  metrics?: readonly Registry[];
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Serves a subgraph over HTTP: POST /graphql with the caller's identity verified from the
 * internal header (requests without a valid one get 401 UNAUTHENTICATED), /healthz, /readyz and
 * /metrics (Prometheus: the process's metrics, every request's duration among them).
 */
export async function startSubgraphServer(options: SubgraphServerOptions): Promise<RunningServer> {
  const { log } = options;
  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);
  // No Apollo Studio here: inline traces would only cost time.
  const plugins: ApolloServerPlugin<SubgraphContext>[] = [
    ApolloServerPluginDrainHttpServer({ httpServer }),
    ApolloServerPluginInlineTraceDisabled(),
    useOperationNotes<SubgraphContext>(),
  ];
  const apollo = new ApolloServer<SubgraphContext>({
    schema: options.schema,
    introspection: options.introspection ?? false,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    formatError: formatError(log),
    plugins,
  });
  await apollo.start();

  app.use(requestIds());
  app.use(observeRequests(log));
  app.use(meterRequests());
  mountHealth(app, options.readiness);
  app.get('/metrics', metricsHandler(...(options.metrics ?? [])));
  options.routes?.(app);
  // The gateway sends a caller's same token for minutes: its verification is remembered.
  const verifyIdentity = createInternalIdentityVerifier(options.internalSecret);
  app.use(
    '/graphql',
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        try {
          const identity = await verifyIdentity(req.header(INTERNAL_IDENTITY_HEADER));
          noteRequest({ caller: identity.userId, tenantId: identity.tenantId });
          return { identity, requestId: currentRequestId() ?? '', log };
        } catch (error) {
          const message = error instanceof AuthenticationError ? error.message : 'invalid identity';
          throw new GraphQLError(`Unauthenticated: ${message}`, {
            extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
          });
        }
      },
    }),
  );

  app.use(jsonBodyErrors('1mb'));

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port, options.host, () => resolve());
  });
  const port = (httpServer.address() as AddressInfo).port;
  const url = `http://${options.host}:${port}/graphql`;
  log.info({ url }, `${options.name} subgraph listening`);
  return {
    url,
    port,
    close: () => apollo.stop(),
  };
}
