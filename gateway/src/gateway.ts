/**
 * The gateway's HTTP side: Apollo Gateway over the supergraph, authentication, query limits, rate
 * limits, GraphQL over HTTP statuses, and the subscription server on the same HTTP server. Over
 * 400 lines: `startGateway` wires them together in one place, and each piece it wires lives in its
 * own module (limits.ts, graphql-over-http.ts, rate-limits/, subscriptions/, auth.ts, apikeys.ts).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import {
  AuthenticationError,
  currentRequestId,
  formatError,
  jsonBodyErrors,
  meterRequests,
  metricsHandler,
  mountHealth,
  noteRequest,
  observeRequests,
  requestIds,
  createInternalIdentitySigner,
  useOperationNotes,
  type Bus,
  type Identity,
  type Logger,
  type OidcOptions,
  type ReadinessCheck,
  type VerifiedBearer,
} from '@fleetgraph/kit/core';
import express from 'express';
import { getOperationAST, GraphQLError, Kind, parse, type DocumentNode } from 'graphql';
import { createJetStreamSource } from './subscriptions/source.js';
import { createSubscriptionServer, type SubscriptionServer } from './subscriptions/server.js';
import { SubgraphSource } from './subgraph-source.js';
import { readinessUrl, subgraphUrls as subgraphReplicaUrls } from './supergraph.js';
import { logsHttpUrl, mountDownloadProxy } from './download-proxy.js';
import { LIMITS, operationLimitError, tokenLimitError } from './limits.js';
import { trustedDocumentsHttp, type TrustedDocuments } from './trusted-documents.js';
import { useOperationMetrics } from './metrics.js';
import { createOriginPolicy } from './cors.js';
import { mountDashboard, type DashboardOptions } from './dashboard.js';
import { codedError } from './subscriptions/errors.js';
import { createApiKeyVerifier } from './apikeys.js';
import { createAuthenticator } from './auth.js';
import {
  requestErrorStatus,
  responseMediaType,
  sendErrors,
  useGraphQLOverHttpStatus,
  type ResponseMediaType,
} from './graphql-over-http.js';
import {
  admitCaller,
  clientAddress,
  createGatewayRateLimiter,
  rateLimitHttp,
  type GatewayRateLimits,
  type RateLimiter,
} from './rate-limits/index.js';

export { LIMITS } from './limits.js';

/** What each gateway operation carries: the verified caller. */
export interface GatewayContext {
  identity: Identity;
  requestId: string;
  /** The media type of the HTTP answer (not set for the gateway's own operations). */
  mediaType?: ResponseMediaType;
}

export interface GatewayOptions {
  supergraphSdl: string;
  host: string;
  port: number;
  /**
   * Serves /metrics on this port of `host` (METRICS_PORT; 0: any free one), and not on `port`:
   * operation names and counts are not the public's. @default on `port`, with the API
   */
  metricsPort?: number;
  /** The secret of HS256 client tokens (AUTH_JWT_SECRET); without it, HS256 tokens are refused. */
  jwtSecret?: string;
  /** The organisation's identity provider, whose tokens are accepted too (AUTH_JWKS_URL, ...). */
  oidc?: OidcOptions;
  /** Longest lifetime of a client bearer token, HS256 or OIDC (AUTH_MAX_TOKEN_LIFETIME). @default 24 h */
  maxTokenLifetimeSeconds?: number;
  /**
   * API keys as bearer tokens, verified by the profiles service over NATS (apikeys.ts): how long a
   * verified key is trusted before it is asked about again (revocations are heard at once).
   * `false`: refused. @default { cacheTtlMs: 30000 }
   */
  apiKeys?: false | { cacheTtlMs?: number };
  internalSecret: string;
  production: boolean;
  log: Logger;
  bus: Bus;
  /** Environment consulted for subgraph URL overrides. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Limits of the subscription engine (see subscriptions/server.ts for the defaults). */
  subscriptions?: {
    bufferLimitBytes?: number;
    maxSubscriptionsPerConnection?: number;
    closeGraceMs?: number;
    keepAliveMs?: number;
    patternConsumerAt?: number;
    authorizationTimeoutMs?: number;
    authorizationMemoryMs?: number;
  };
  /**
   * Requests a minute per caller (a verified token's subject) and per address without a valid
   * token, on HTTP, graphql-ws connection attempts and subscribes, and SSE; a burst of a tenth
   * allowed; shared by the replicas on the same NATS (rate-limits/). 0: no limit. @default no limits
   */
  rateLimit?: GatewayRateLimits;
  /** Proxies in front of the gateway whose `X-Forwarded-For` tells the client's address. @default 0 */
  trustedProxyHops?: number;
  /** Trusted documents (trusted-documents.ts), on every transport. @default off */
  trustedDocuments?: TrustedDocuments;
  /**
   * Origins other than the gateway's own whose pages may call it from a browser (CORS on HTTP and
   * SSE; the graphql-ws upgrade checks `Origin` against them, cors.ts). @default none
   */
  corsOrigins?: readonly string[];
  /** The web dashboard served at `/` (dashboard.ts). @default not served */
  dashboard?: DashboardOptions;
  /**
   * Whether identical subgraph queries in flight for the same caller are sent once
   * (subgraph-source.ts; `SUBGRAPH_SHARE_INFLIGHT`). @default true
   */
  shareInflightFetches?: boolean;
}

export interface RunningGateway {
  url: string;
  port: number;
  /** Where /metrics is served: on `port`, or on the metrics port when one is set. */
  metricsUrl: string;
  /** The subscription engine: its fields, stats and metrics. */
  subscriptions: SubscriptionServer;
  /** The rate limiter, when limits are set. */
  rateLimiter?: RateLimiter;
  close(): Promise<void>;
}

/** The largest request body the gateway reads. */
export const BODY_LIMIT = '1mb';
/** The largest subscription request over SSE (as for a graphql-ws message). */
const SSE_BODY_LIMIT = '64kb';

function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

/** Credentials that cannot be checked now (the identity provider's keys or the profiles service out of reach). */
function authenticationUnavailable(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'SERVICE_UNAVAILABLE', http: { status: 503 } } });
}

/** Where subscriptions are served, told to one sent to POST or GET /graphql (400 in every media type). */
const SUBSCRIPTION_NOT_SERVED = {
  message: 'subscriptions are served over graphql-ws on this path, or over Server-Sent Events at /graphql/stream',
  extensions: { code: 'BAD_REQUEST' },
} as const;

/**
 * Apollo Gateway cannot run subscriptions (and graphql-js 16 throws on some subscription
 * documents during validation, which Apollo answers with a 500): a subscription posted here is
 * told, with a 400, where subscriptions are served. Documents that cannot be one are not parsed.
 */
const refuseSubscriptions: express.RequestHandler = (req, res, next) => {
  const { query, operationName } = (req.body ?? {}) as { query?: unknown; operationName?: unknown };
  if (typeof query !== 'string' || !query.includes('subscription')) return next();
  let operation: string | undefined;
  try {
    operation = getOperationAST(parse(query), typeof operationName === 'string' ? operationName : undefined)?.operation;
  } catch {
    // Not a document: Apollo answers that.
    return next();
  }
  if (operation !== 'subscription') return next();
  // Not a request error of the document: the operation is not served on this transport.
  sendErrors(req, res, [SUBSCRIPTION_NOT_SERVED], 400);
};

/** A limit error as Apollo answers it on POST /graphql: 400. */
/** Why no operation of the document can run with the operationName given. */
function unresolvedOperation(document: DocumentNode, operationName: string | null | undefined): string {
  const names = document.definitions.flatMap((d) =>
    d.kind === Kind.OPERATION_DEFINITION ? [d.name?.value ?? null] : [],
  );
  if (names.length === 0) return 'the document has no operation to run';
  if (operationName) return `Unknown operation named "${operationName}"`;
  return 'Must provide operation name if query contains multiple operations';
}

const badRequest = (error: GraphQLError) =>
  new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status: 400 } } });

/**
 * The token limit, before anything parses the document (Apollo, or refuseSubscriptions): answered
 * as a request error (graphql-over-http.ts) with the error every transport gives (limits.ts).
 */
const limitTokens: express.RequestHandler = (req, res, next) => {
  const query = req.method === 'GET' ? req.query.query : (req.body as { query?: unknown } | undefined)?.query;
  const refused = typeof query === 'string' ? tokenLimitError(query) : undefined;
  if (!refused) return next();
  sendErrors(req, res, [refused.toJSON()], requestErrorStatus);
};

/**
 * Depth, aliases, directives and cost of the operation to run, with its variables as sent (the
 * cost counts a page size given as a variable like a literal one): refused with 400 before anything
 * runs. The token limit is met before parsing (limitTokens). A subscription is refused here too,
 * whatever brought its document (refuseSubscriptions sees only a `query` sent in a POST body, not
 * one run by its persisted-query hash alone, nor a GET): Apollo Gateway cannot execute it.
 */
const queryLimits: ApolloServerPlugin<GatewayContext> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ schema, document, operation, request }) {
        // Which operation to run cannot be told: a request error (400), as GraphQL over HTTP
        // says, where Apollo Gateway's executor would throw it as a server error (500).
        if (!operation)
          throw badRequest(
            new GraphQLError(unresolvedOperation(document, request.operationName), {
              extensions: { code: 'BAD_REQUEST' },
            }),
          );
        // As refuseSubscriptions answers it (useGraphQLOverHttpStatus leaves its 400 as it is).
        if (operation.operation === 'subscription')
          throw badRequest(
            new GraphQLError(SUBSCRIPTION_NOT_SERVED.message, { extensions: SUBSCRIPTION_NOT_SERVED.extensions }),
          );
        const refused = operationLimitError(schema, document, operation, request.variables);
        if (refused) throw badRequest(refused);
      },
    };
  },
};

/**
 * Verifies a bearer token or API key into an identity, or throws UNAUTHENTICATED (401), or
 * SERVICE_UNAVAILABLE (503) when what vouches for it cannot be reached. The messages never hold
 * the credential.
 */
export async function authenticate(
  authorization: string | undefined,
  verify: (authorization: string | undefined) => Promise<VerifiedBearer>,
): Promise<Identity> {
  try {
    return (await verify(authorization)).identity;
  } catch (error) {
    if (error instanceof AuthenticationError && error.reason === 'unavailable')
      throw authenticationUnavailable(`Unauthenticated: ${error.message}`);
    throw unauthenticated(
      error instanceof AuthenticationError ? `Unauthenticated: ${error.message}` : 'Unauthenticated',
    );
  }
}

/**
 * Starts the gateway: Apollo Gateway over the supergraph, queries and mutations at POST /graphql,
 * JWT verification, query limits (limits.ts), /healthz and /readyz.
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const { log } = options;
  // One token per verified caller for minutes: signed once, not per subgraph fetch.
  const signIdentity = createInternalIdentitySigner(options.internalSecret);
  /** Each subgraph's replicas' URLs. */
  const subgraphUrls = new Map<string, string[]>();
  const gateway = new ApolloGateway({
    supergraphSdl: options.supergraphSdl,
    buildService: ({ name, url }) => {
      const resolved = subgraphReplicaUrls(name, url, options.env);
      subgraphUrls.set(name, resolved);
      return new SubgraphSource({
        name,
        urls: resolved,
        sign: signIdentity,
        shareInflight: options.shareInflightFetches,
      });
    },
  });

  // graphql-armor only hides field suggestions in production: its limits cannot see variables, and
  // run as validation rules and a second parse whose errors Apollo answered as syntax errors or 500s.
  const armor = new ApolloArmor({
    maxDepth: { enabled: false },
    maxAliases: { enabled: false },
    maxTokens: { enabled: false },
    costLimit: { enabled: false },
    maxDirectives: { enabled: false },
    blockFieldSuggestion: { enabled: options.production },
  }).protect();

  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);

  // Subscriptions: graphql-ws on the same server and path, authorised through this gateway's own
  // federated query path, fed by JetStream (subscriptions/).
  let apollo: ApolloServer<GatewayContext> | undefined;
  // Every request and subscription connection brings its token or API key: HS256 and OIDC tokens are
  // verified once each, API keys asked about once per cache lifetime and forgotten when revoked.
  const apiKeys =
    options.apiKeys === false
      ? undefined
      : createApiKeyVerifier({
          bus: options.bus,
          log,
          cacheTtlMs: options.apiKeys?.cacheTtlMs,
          // A revoked key's graphql-ws connections and SSE streams end at once, on every replica.
          onRevoked: (subject) => subscriptions.endConnectionsOf(subject, 'API key revoked'),
        });
  const verify = createAuthenticator({
    jwtSecret: options.jwtSecret,
    oidc: options.oidc,
    maxTokenLifetimeSeconds: options.maxTokenLifetimeSeconds,
    apiKeys,
  });
  const trustedProxyHops = options.trustedProxyHops ?? 0;
  const trustedDocuments = options.trustedDocuments?.mode === 'off' ? undefined : options.trustedDocuments;
  const rateLimiter = options.rateLimit && createGatewayRateLimiter(options.rateLimit, options.bus, log);
  const origins = createOriginPolicy(options.corsOrigins);
  const subscriptions = createSubscriptionServer({
    server: httpServer,
    path: '/graphql',
    verify,
    source: createJetStreamSource({ bus: options.bus, log }),
    allowUpgrade: (request) => origins.allowsUpgrade(request),
    log,
    production: options.production,
    ...options.subscriptions,
    ...(trustedDocuments && {
      resolveDocument: (payload) => {
        const resolved = trustedDocuments.resolve(payload);
        if (!resolved.ok) return codedError(resolved.code, resolved.message);
        return resolved.query ?? payload.query;
      },
    }),
    ...(rateLimiter && {
      admit: (identity, address) => admitCaller(rateLimiter, identity, address),
      clientAddress: (request) => clientAddress(request, trustedProxyHops),
    }),
    async authorize(query, variables, identity) {
      if (!apollo) throw new Error('the gateway is not started');
      const response = await apollo.executeOperation(
        { query, variables },
        { contextValue: { identity, requestId: randomUUID() } },
      );
      if (response.body.kind !== 'single') throw new Error('unexpected incremental response');
      return response.body.singleResult;
    },
  });
  let bindingError: unknown;
  gateway.onSchemaLoadOrUpdate(({ apiSchema, coreSupergraphSdl }) => {
    try {
      subscriptions.setSchema(apiSchema, coreSupergraphSdl);
    } catch (error) {
      bindingError = error;
      log.error({ err: error }, 'cannot serve the subscriptions of this supergraph');
    }
  });

  const plugins: ApolloServerPlugin<GatewayContext>[] = [
    ...(armor.plugins as ApolloServerPlugin<GatewayContext>[]),
    queryLimits,
    useGraphQLOverHttpStatus<GatewayContext>(),
    // The operation's name in the access line (observeRequests).
    useOperationNotes<GatewayContext>(),
    // Each operation's duration by name (the trusted documents' names, else the first 100 seen) and outcome.
    useOperationMetrics<GatewayContext>({ knownOperationNames: trustedDocuments?.operationNames }),
    // Before the HTTP server drains: close subscription sockets (1001) so clients resume elsewhere.
    { serverWillStart: async () => ({ drainServer: () => subscriptions.close() }) },

    ApolloServerPluginDrainHttpServer({ httpServer }),
    options.production
      ? ApolloServerPluginLandingPageDisabled()
      : ApolloServerPluginLandingPageLocalDefault({ embed: true }),
  ];
  apollo = new ApolloServer<GatewayContext>({
    gateway,
    introspection: !options.production,
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    // Enforced trusted documents are the only persisted queries: nothing registers more.
    ...(trustedDocuments?.mode === 'enforce' && { persistedQueries: false as const }),
    includeStacktraceInErrorResponses: false,
    // limitTokens answers first on HTTP; this bounds the parse of any other operation (executeOperation).
    parseOptions: { maxTokens: LIMITS.maxTokens },
    formatError: formatError(log),
    plugins,
  });
  await apollo.start();
  if (bindingError) {
    await apollo.stop().catch(() => {});
    throw bindingError;
  }

  const readiness: ReadinessCheck[] = [
    { name: 'nats', check: () => options.bus.ping() },
    // Subscriptions read JetStream streams.
    { name: 'jetstream', check: () => options.bus.jetStreamReady() },
    // A subgraph is there while one of its replicas is ready.
    ...[...subgraphUrls].map(([name, urls]) => ({
      name,
      check: async () => {
        await Promise.any(
          urls.map(async (url) => {
            const response = await fetch(readinessUrl(url), { signal: AbortSignal.timeout(2_000) });
            if (!response.ok) throw new Error(`${name} answered ${response.status}`);
          }),
        ).catch((error: AggregateError) => {
          throw error.errors[0] ?? error;
        });
      },
    })),
  ];

  app.use(requestIds());
  // A server span and one access line per request (the kit's observeRequests).
  app.use(observeRequests(log));
  app.use(meterRequests());
  // CORS before the rate limits, so that a 429 reaches a page of another allowed origin readably.
  app.use('/graphql', origins.http);
  mountHealth(app, readiness);
  // Log bundle downloads: signed links served by the logs service, reached through this host.
  mountDownloadProxy(app, logsHttpUrl(options.env ?? process.env, subgraphUrls.get('logs')?.[0]), log);
  // The process's metrics (the kit's, the gateway's operations), then the subscription engine's:
  // here, or on a port of their own (metricsPort), the public one then answering 404.
  const metrics = metricsHandler(subscriptions.metrics);
  let metricsServer: http.Server | undefined;
  if (options.metricsPort === undefined) app.get('/metrics', metrics);
  else {
    app.get('/metrics', (_req, res) => void res.status(404).end());
    const metricsApp = express();
    metricsApp.disable('x-powered-by');
    metricsApp.get('/metrics', metrics);
    metricsServer = http.createServer(metricsApp);
  }
  // Rate limits, before anything reads a body: queries, mutations and SSE subscriptions alike.
  if (rateLimiter) app.use('/graphql', rateLimitHttp({ limiter: rateLimiter, verify, trustedProxyHops }));
  // Subscriptions over Server-Sent Events, for clients that cannot open a WebSocket (see the README).
  const serveSse: express.RequestHandler = (req, res, next) => void subscriptions.serveSse(req, res).catch(next);
  app.get('/graphql/stream', serveSse);
  app.post('/graphql/stream', express.json({ limit: SSE_BODY_LIMIT }), serveSse);
  app.use(
    '/graphql',
    express.json({ limit: BODY_LIMIT }),
    ...(trustedDocuments ? [trustedDocumentsHttp(trustedDocuments)] : []),
    limitTokens,
    refuseSubscriptions,
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        const identity = await authenticate(req.header('authorization'), verify);
        noteRequest({ caller: identity.userId, tenantId: identity.tenantId });
        return { identity, requestId: currentRequestId() ?? '', mediaType: responseMediaType(req) };
      },
    }),
  );

  app.use('/graphql/stream', jsonBodyErrors(SSE_BODY_LIMIT));
  app.use(jsonBodyErrors(BODY_LIMIT));
  // Last: the dashboard's client-side routes never shadow the gateway's own paths.
  if (options.dashboard) mountDashboard(app, options.dashboard, log);

  const listen = (server: http.Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, options.host, () => resolve((server.address() as AddressInfo).port));
    });
  const closeMetrics = () =>
    new Promise<void>((resolve) => (metricsServer?.listening ? metricsServer.close(() => resolve()) : resolve()));
  let metricsPort: number | undefined;
  if (metricsServer) {
    try {
      metricsPort = await listen(metricsServer, options.metricsPort!);
    } catch (error) {
      await apollo.stop().catch(() => {});
      throw error;
    }
  }
  let port: number;
  try {
    port = await listen(httpServer, options.port);
  } catch (error) {
    await closeMetrics();
    throw error;
  }
  const url = `http://${options.host}:${port}/graphql`;
  const metricsUrl = `http://${options.host}:${metricsPort ?? port}/metrics`;
  log.info({ url, metricsUrl }, 'gateway listening');
  const running = apollo;
  return {
    url,
    port,
    metricsUrl,
    subscriptions,
    ...(rateLimiter && { rateLimiter }),
    close: async () => {
      apiKeys?.close();
      await running.stop();
      await closeMetrics();
      await rateLimiter?.close();
    },
  };
}
