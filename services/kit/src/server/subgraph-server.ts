import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type Express } from 'express';
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { AuthenticationError, INTERNAL_IDENTITY_HEADER, verifyInternalIdentity } from '../auth/tokens.js';
import type { Identity } from '../auth/identity.js';
import { currentRequestId, REQUEST_ID_HEADER, withRequestScope, type Logger } from '../log.js';

/** What every subgraph resolver receives. */
export interface SubgraphContext {
  identity: Identity;
  requestId: string;
  log: Logger;
}

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/** The options of startSubgraphServer that every service takes from its environment (serviceEnvShape). */
export function subgraphServerEnv(env: { HOST: string; PORT: number; INTERNAL_AUTH_SECRET: string; NODE_ENV: string }) {
  return { host: env.HOST, port: env.PORT, internalSecret: env.INTERNAL_AUTH_SECRET, introspection: env.NODE_ENV !== 'production' };
}

/** The readiness checks of a service on NATS and a store. */
export function busAndStoreReadiness(bus: { ping(): Promise<void>; jetStreamReady(): Promise<void> }, store: { ping(): Promise<void> }): ReadinessCheck[] {
  return [
    { name: 'nats', check: () => bus.ping() },
    { name: 'jetstream', check: () => bus.jetStreamReady() },
    { name: 'store', check: () => store.ping() },
  ];
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
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Masks what is not meant for clients: unknown errors become INTERNAL_SERVER_ERROR, never a stack trace. */
export function formatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.code;
    // Errors raised on purpose carry a code (ours, or Apollo's for parse and validation failures).
    if (typeof code === 'string' && code !== 'INTERNAL_SERVER_ERROR') return formatted;
    // Apollo's own refusals of a request (a persisted query whose hash does not match, say) come
    // without a code but with a 4xx status: the client's error, told as it is.
    const status = (error as GraphQLError | undefined)?.extensions?.http as { status?: unknown } | undefined;
    if (typeof status?.status === 'number' && status.status < 500) return { ...formatted, extensions: { ...formatted.extensions, code: 'BAD_REQUEST' } };
    log.error({ err: (error as GraphQLError)?.originalError ?? error, path: formatted.path }, 'unexpected error in resolver');
    return { message: 'Internal server error', path: formatted.path, extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: currentRequestId() } };
  };
}

/** A body that is too large or not JSON gets a GraphQL-shaped error, not an HTML page. */
export function jsonBodyErrors(limit: string): express.ErrorRequestHandler {
  return (error, _req, res, next) => {
    const status = typeof error?.status === 'number' ? error.status : 500;
    if (status >= 500) return next(error);
    const message = error.type === 'entity.too.large' ? `request body is larger than ${limit}` : 'request body is not valid JSON';
    res.status(status).json({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });
  };
}

/** Adds /healthz (the process is up) and /readyz (every readiness check passes). */
export function mountHealth(app: Express, checks: readonly ReadinessCheck[]): void {
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      checks.map(async (c) => {
        try {
          await c.check();
          return { name: c.name, ok: true as const };
        } catch (error) {
          return { name: c.name, ok: false as const, error: (error as Error).message };
        }
      }),
    );
    const ready = results.every((r) => r.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: results });
  });
}

/**
 * Serves a subgraph over HTTP: POST /graphql with the caller's identity verified from the
 * internal header (requests without a valid one get 401 UNAUTHENTICATED), /healthz, /readyz.
 */
export async function startSubgraphServer(options: SubgraphServerOptions): Promise<RunningServer> {
  const { log } = options;
  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);
  // No Apollo Studio here: inline traces would only cost time.
  const plugins: ApolloServerPlugin<SubgraphContext>[] = [ApolloServerPluginDrainHttpServer({ httpServer }), ApolloServerPluginInlineTraceDisabled()];
  const apollo = new ApolloServer<SubgraphContext>({
    schema: options.schema,
    introspection: options.introspection ?? false,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    formatError: formatError(log),
    plugins,
  });
  await apollo.start();

  app.use((req, _res, next) => withRequestScope(req.header(REQUEST_ID_HEADER), next));
  mountHealth(app, options.readiness);
  options.routes?.(app);
  app.use(
    '/graphql',
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        try {
          const identity = await verifyInternalIdentity(req.header(INTERNAL_IDENTITY_HEADER), options.internalSecret);
          return { identity, requestId: currentRequestId() ?? '', log };
        } catch (error) {
          const message = error instanceof AuthenticationError ? error.message : 'invalid identity';
          throw new GraphQLError(`Unauthenticated: ${message}`, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
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
