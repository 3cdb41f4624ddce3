import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloGateway, RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import {
  AuthenticationError,
  createBearerVerifier,
  currentRequestId,
  formatError,
  jsonBodyErrors,
  INTERNAL_IDENTITY_HEADER,
  mountHealth,
  REQUEST_ID_HEADER,
  signInternalIdentity,
  withRequestScope,
  type Bus,
  type Identity,
  type Logger,
  type ReadinessCheck,
  type VerifiedBearer,
} from '@fleetgraph/kit/core';
import express from 'express';
import { getOperationAST, GraphQLError, Kind, parse, type DocumentNode } from 'graphql';
import { createJetStreamSource } from './subscriptions/source.js';
import { createSubscriptionServer, type SubscriptionServer } from './subscriptions/server.js';
import { failoverFetch, readinessUrl, subgraphUrls as subgraphReplicaUrls } from './supergraph.js';
import { logsHttpUrl, mountDownloadProxy } from './download-proxy.js';
import { LIMITS, operationLimitError, tokenLimitError } from './limits.js';

export { LIMITS } from './limits.js';

/** What each gateway operation carries: the verified caller. */
export interface GatewayContext {
  identity: Identity;
  requestId: string;
}

export interface GatewayOptions {
  supergraphSdl: string;
  host: string;
  port: number;
  jwtSecret: string;
  /** Longest lifetime of a client bearer token (AUTH_MAX_TOKEN_LIFETIME). @default 24 h */
  maxTokenLifetimeSeconds?: number;
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
  };
}

export interface RunningGateway {
  url: string;
  port: number;
  /** The subscription engine: its fields, stats and metrics. */
  subscriptions: SubscriptionServer;
  close(): Promise<void>;
}

/** Forwards the verified caller and the request id to a subgraph. */
class IdentityForwardingDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  constructor(
    urls: readonly string[],
    private readonly internalSecret: string,
  ) {
    // Node's own fetch (undici) rather than the default make-fetch-happen, whose cache and retry
    // layers the gateway does not use: measured apart, 15-20% less CPU and wall time per request.
    // Over several replicas, a replica that cannot be reached is failed over.
    super({ url: urls[0]!, fetcher: failoverFetch(urls) });
  }

  override async willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<void> {
    // Only operations of a client carry an identity; the gateway itself sends none.
    if (!('identity' in context) || !context.identity) return;
    request.http?.headers.set(
      INTERNAL_IDENTITY_HEADER,
      await signInternalIdentity(context.identity, this.internalSecret),
    );
    request.http?.headers.set(REQUEST_ID_HEADER, context.requestId);
  }
}

/** The largest request body the gateway reads. */
export const BODY_LIMIT = '1mb';
/** The largest subscription request over SSE (as for a graphql-ws message). */
const SSE_BODY_LIMIT = '64kb';

function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
}

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
  res.status(400).json({
    errors: [
      {
        message: 'subscriptions are served over graphql-ws on this path, or over Server-Sent Events at /graphql/stream',
        extensions: { code: 'BAD_REQUEST' },
      },
    ],
  });
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
 * 400 with the error every transport gives (limits.ts).
 */
const limitTokens: express.RequestHandler = (req, res, next) => {
  const query = req.method === 'GET' ? req.query.query : (req.body as { query?: unknown } | undefined)?.query;
  const refused = typeof query === 'string' ? tokenLimitError(query) : undefined;
  if (!refused) return next();
  res.status(400).json({ errors: [refused.toJSON()] });
};

/**
 * Depth, aliases, directives and cost of the operation to run, with its variables as sent (the
 * cost counts a page size given as a variable like a literal one): refused with 400 before anything
 * runs. The token limit is met before parsing (limitTokens).
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
        const refused = operationLimitError(schema, document, operation, request.variables);
        if (refused) throw badRequest(refused);
      },
    };
  },
};

/** Verifies a bearer token into an identity, or throws UNAUTHENTICATED. */
export async function authenticate(
  authorization: string | undefined,
  verify: (authorization: string | undefined) => Promise<VerifiedBearer>,
): Promise<Identity> {
  try {
    return (await verify(authorization)).identity;
  } catch (error) {
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
  /** Each subgraph's replicas' URLs. */
  const subgraphUrls = new Map<string, string[]>();
  const gateway = new ApolloGateway({
    supergraphSdl: options.supergraphSdl,
    buildService: ({ name, url }) => {
      const resolved = subgraphReplicaUrls(name, url, options.env);
      subgraphUrls.set(name, resolved);
      return new IdentityForwardingDataSource(resolved, options.internalSecret);
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
  // Every request and subscription connection brings its token: each is verified once.
  const verify = createBearerVerifier(options.jwtSecret, { maxLifetimeSeconds: options.maxTokenLifetimeSeconds });
  const subscriptions = createSubscriptionServer({
    server: httpServer,
    path: '/graphql',
    jwtSecret: options.jwtSecret,
    verify,
    source: createJetStreamSource({ bus: options.bus, log }),
    log,
    production: options.production,
    ...options.subscriptions,
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

  app.use((req, _res, next) => withRequestScope(req.header(REQUEST_ID_HEADER), next));
  mountHealth(app, readiness);
  // Log bundle downloads: signed links served by the logs service, reached through this host.
  mountDownloadProxy(app, logsHttpUrl(options.env ?? process.env, subgraphUrls.get('logs')?.[0]), log);
  app.get('/metrics', async (_req, res) => {
    res.type(subscriptions.metrics.contentType).send(await subscriptions.metrics.metrics());
  });
  // Subscriptions over Server-Sent Events, for clients that cannot open a WebSocket (see the README).
  const serveSse: express.RequestHandler = (req, res, next) => void subscriptions.serveSse(req, res).catch(next);
  app.get('/graphql/stream', serveSse);
  app.post('/graphql/stream', express.json({ limit: SSE_BODY_LIMIT }), serveSse);
  app.use(
    '/graphql',
    express.json({ limit: BODY_LIMIT }),
    limitTokens,
    refuseSubscriptions,
    expressMiddleware(apollo, {
      context: async ({ req }) => ({
        identity: await authenticate(req.header('authorization'), verify),
        requestId: currentRequestId() ?? '',
      }),
    }),
  );

  app.use('/graphql/stream', jsonBodyErrors(SSE_BODY_LIMIT));
  app.use(jsonBodyErrors(BODY_LIMIT));

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port, options.host, () => resolve());
  });
  const port = (httpServer.address() as AddressInfo).port;
  const url = `http://${options.host}:${port}/graphql`;
  log.info({ url }, 'gateway listening');
  const running = apollo;
  return { url, port, subscriptions, close: () => running.stop() };
}
