import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { verifyBearer, type Identity, type Logger, type VerifiedBearer } from '@fleetgraph/kit/core';
import type { Registry } from 'prom-client';
import type { Admission } from '../rate-limits/limiter.js';
import type { AuthorizeResult } from './authoriser.js';
import { createSubscriptionEngine, type SubscriptionEngine, type SubscriptionEngineOptions } from './engine.js';
import { createSubscriptionMetrics } from './metrics.js';
import type { EventSource } from './source.js';
import { createSseTransport } from './sse.js';
import { serveGraphqlWs } from './transport.js';

export type { AuthorizeResult } from './authoriser.js';
export { SLOW_CONSUMER_REASON, SubscriptionCloseCode } from './peers.js';

/** What createSubscriptionServer serves, and its limits. */
export interface SubscriptionServerOptions {
  /** The gateway's HTTP server: graphql-ws shares it (and the path) with queries. */
  server: HttpServer;
  /** @default '/graphql' */
  path?: string;
  /** Verifies client tokens: `verify`, or verifyBearer with this secret (one of the two is given). */
  jwtSecret?: string;
  /** Verifies a client's `Authorization` value (the gateway's, which remembers verified tokens). */
  verify?: (authorization: string | undefined) => Promise<VerifiedBearer>;
  source: EventSource;
  /** Runs a query through the gateway's federated query path as `identity`. */
  authorize(query: string, variables: Record<string, unknown>, identity: Identity): Promise<AuthorizeResult>;
  log: Logger;
  /**
   * Bytes a connection may have waiting in its send buffer before it is closed as a slow consumer.
   * @default 1 MiB
   */
  bufferLimitBytes?: number;
  /** Subscriptions one connection may hold at once. @default 100 */
  maxSubscriptionsPerConnection?: number;
  /** Largest incoming WebSocket message. @default 64 KiB */
  maxMessageBytes?: number;
  /** How long a closed slow consumer or a socket at shutdown gets to finish the close handshake. @default 5000 */
  closeGraceMs?: number;
  /** graphql-ws keep-alive: a ping this often, and a socket without pong for as long is dropped. @default 12000 */
  keepAliveMs?: number;
  /** Hides internal error messages from clients. @default false */
  production?: boolean;
  /** See HubOptions.patternConsumerAt. @default 32 */
  patternConsumerAt?: number;
  /** How long an authorisation query may take before the subscribe is refused as SERVICE_UNAVAILABLE. @default 10000 */
  authorizationTimeoutMs?: number;
  /**
   * How long a granted authorisation is remembered for the same caller (claims) and entity: a
   * subscribe to an entity deleted or made unreadable since may start within it, never later.
   * @default 30000
   */
  authorizationMemoryMs?: number;
  /**
   * Rate limits graphql-ws connection attempts (`connection_init`: by its token's caller, else by
   * the client's address) and subscribes (by the connection's caller): a connection attempt over
   * the limit is closed with 4429, a subscribe over it answered RATE_LIMITED. SSE requests are
   * limited before they get here, as HTTP requests. The address is given only without an identity
   * ('' with one: a verified caller is limited as itself). @default none
   */
  admit?: (identity: Identity | undefined, address: string) => Promise<Admission>;
  /** The client's address of a WebSocket upgrade request. @default the socket's peer */
  clientAddress?: (request: IncomingMessage) => string;
  /** Whether a WebSocket upgrade request may open a socket (the gateway checks its `Origin`). @default all */
  allowUpgrade?: (request: IncomingMessage) => boolean;
  /** See SubscriptionEngineOptions.resolveDocument (trusted documents). */
  resolveDocument?: SubscriptionEngineOptions['resolveDocument'];
}

/**
 * The gateway's subscriptions: the engine, served over graphql-ws and Server-Sent Events (see
 * gateway/README.md, Subscriptions).
 */
export interface SubscriptionServer
  extends Pick<SubscriptionEngine, 'setSchema' | 'fields' | 'stats' | 'endConnectionsOf'> {
  /** Prometheus registry for `/metrics`. */
  readonly metrics: Registry;
  /**
   * Serves one subscription over Server-Sent Events (GraphQL over SSE, distinct connections mode):
   * GET or POST (with the body already parsed as JSON) with `Accept: text/event-stream`.
   */
  serveSse(request: IncomingMessage & { body?: unknown }, response: ServerResponse): Promise<void>;
  /** Closes every socket with 1001 going away, ends every SSE stream, and removes every consumer. */
  close(): Promise<void>;
}

/**
 * Creates the subscription engine and serves it over graphql-ws on the HTTP server's path and,
 * through `serveSse`, over Server-Sent Events: the engine (engine.ts) knows no transport, and
 * each transport (transport.ts, sse.ts) maps its protocol onto it.
 */
export function createSubscriptionServer(options: SubscriptionServerOptions): SubscriptionServer {
  const { log } = options;
  const closeGraceMs = options.closeGraceMs ?? 5_000;
  const keepAliveMs = options.keepAliveMs ?? 12_000;
  const verify =
    options.verify ??
    ((authorization: string | undefined) => {
      if (options.jwtSecret === undefined) throw new Error('createSubscriptionServer needs verify or jwtSecret');
      return verifyBearer(authorization, options.jwtSecret);
    });
  const engine = createSubscriptionEngine({
    source: options.source,
    authorize: options.authorize,
    log,
    bufferLimitBytes: options.bufferLimitBytes ?? 1024 * 1024,
    closeGraceMs,
    patternConsumerAt: options.patternConsumerAt,
    authorizationTimeoutMs: options.authorizationTimeoutMs ?? 10_000,
    authorizationMemoryMs: options.authorizationMemoryMs ?? 30_000,
    resolveDocument: options.resolveDocument,
  });
  const graphqlWs = serveGraphqlWs(engine, {
    server: options.server,
    path: options.path ?? '/graphql',
    maxMessageBytes: options.maxMessageBytes ?? 64 * 1024,
    maxSubscriptionsPerConnection: options.maxSubscriptionsPerConnection ?? 100,
    verify,
    production: options.production ?? false,
    keepAliveMs,
    log,
    admit: options.admit,
    clientAddress: options.clientAddress,
    allowUpgrade: options.allowUpgrade,
  });
  const sse = createSseTransport(engine, { verify, keepAliveMs });
  const stats = () => engine.stats();

  return {
    serveSse: sse.serve,
    setSchema: (apiSchema, supergraphSdl) => engine.setSchema(apiSchema, supergraphSdl),
    endConnectionsOf: (userId, reason) => engine.endConnectionsOf(userId, reason),
    get fields() {
      return engine.fields;
    },
    metrics: createSubscriptionMetrics(stats),
    stats,
    close: () =>
      engine.close(async () => {
        sse.close();
        // graphql-ws closes every socket with 1001 "Going away" and waits for them to go.
        await graphqlWs.close(closeGraceMs);
        sse.close();
      }),
  };
}
