import type { Server as HttpServer, IncomingMessage } from 'node:http';
import {
  AuthenticationError,
  REQUEST_ID_HEADER,
  type Identity,
  type Logger,
  type VerifiedBearer,
} from '@fleetgraph/kit/core';
import {
  CloseCode,
  DEPRECATED_GRAPHQL_WS_PROTOCOL,
  handleProtocols,
  makeServer,
  MessageType,
  type ServerOptions,
  type WebSocket as GraphqlWsSocket,
} from 'graphql-ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { Admission } from '../rate-limits/limiter.js';
import type { SubscriptionEngine } from './engine.js';
import { codedError, isErrors } from './errors.js';
import { SubscriptionCloseCode, WebSocketPeer } from './peers.js';
import { createConnectionLog } from './access-log.js';
import type { Plan } from './subscription.js';

/** What graphql-ws hands the engine's hooks as `ctx.extra`. */
export interface SocketExtra {
  readonly socket: WebSocket;
  /**
   * The client's address (rate limits of callers without a valid token), worked out when first
   * read before `settled`; 'unknown' when read only after it.
   */
  readonly address: string;
  /** The connection is opened or refused: the upgrade request, kept for `address`, is let go. */
  settled(): void;
}

/** How useGraphqlWs treats the sockets. */
export interface GraphqlWsOptions {
  /** Hides internal error messages in close reasons. */
  production: boolean;
  /**
   * Every socket is pinged this often, and terminated when it has not answered the previous ping.
   * 0 turns pings off.
   */
  keepAliveMs: number;
  log: Logger;
  /** The client's address of an upgrade request. @default the socket's peer */
  clientAddress?: (request: IncomingMessage) => string;
}

/**
 * Pings go out in this many slices per keep-alive period (every 100 ms for 12 s), so that 10,000
 * sockets do not hold up the event loop, and the events waiting behind it, at once.
 */
const KEEP_ALIVE_SLICES = 120;

/** Messages only a server sends: a client sending one breaks the protocol. */
const SERVER_ONLY_TYPES: ReadonlySet<string> = new Set([
  MessageType.ConnectionAck,
  MessageType.Next,
  MessageType.Error,
]);

/**
 * Text that may hold such a type, escaped or not (the JSON parse then decides): most messages
 * (init, subscribe, complete, pong) hold none of these and are not parsed twice.
 */
const SERVER_ONLY_TYPE_TEXT = /connection_ack|next|error|\\u/;

/** The type of a message only a server may send, if `text` is one (anything else is graphql-ws's to judge). */
function serverOnlyType(text: string): string | undefined {
  if (!SERVER_ONLY_TYPE_TEXT.test(text)) return undefined;
  try {
    const message: unknown = JSON.parse(text);
    const type = message && typeof message === 'object' ? (message as { type?: unknown }).type : undefined;
    return typeof type === 'string' && SERVER_ONLY_TYPES.has(type) ? type : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One socket as graphql-ws sees it, and what the transport keeps of it. A class, and listeners
 * shared by every socket (`this` is the socket): with thousands of idle connections, a closure
 * per listener per socket was a good part of their memory.
 */
class ServedSocket implements GraphqlWsSocket {
  readonly protocol: string;
  /** Whether it answered the last ping. */
  alive = true;
  handle?: (data: string) => Promise<void>;
  closed?: (code?: number, reason?: string) => Promise<void>;

  constructor(readonly socket: WebSocket) {
    this.protocol = socket.protocol;
  }

  send(data: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.socket.readyState !== WebSocket.OPEN) return resolve();
      this.socket.send(data, (error) => (error ? reject(error) : resolve()));
    });
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  onMessage(handle: (data: string) => Promise<void>): void {
    this.handle = handle;
  }
}

/**
 * Serves graphql-ws (graphql-transport-ws) on a `ws` server: graphql-ws's `makeServer` mapped onto
 * `ws`, as graphql-ws's own `useServer` (`graphql-ws/use/ws`) does, with differences that matter
 * with many idle sockets: keep-alive is one timer for every socket instead of an interval, a
 * timeout and a pong listener per socket and ping; listeners are shared; `ctx.extra` keeps the
 * socket only, not the upgrade request (its headers are not needed once the socket is open).
 * The server's `handleProtocols` must be graphql-ws's (`handleProtocols` from 'graphql-ws').
 */
export function useGraphqlWs(
  options: ServerOptions<{ authorization?: unknown }, SocketExtra>,
  wss: WebSocketServer,
  transport: GraphqlWsOptions,
): { dispose(): Promise<void> } {
  const { log, production } = transport;
  const server = makeServer(options);
  const connections = new Map<WebSocket, ServedSocket>();
  const reason = (error: unknown) =>
    production
      ? 'Internal server error'
      : (error instanceof Error ? error.message : String(error)).slice(0, 120) || 'Internal server error';

  /**
   * `ctx.extra`: the address is worked out only if a hook reads it (a connection attempt without a
   * valid token, under rate limits), not for every socket (a getpeername call, for one).
   */
  class ServedExtra implements SocketExtra {
    #request: IncomingMessage | undefined;
    #address: string | undefined;

    constructor(
      readonly socket: WebSocket,
      request: IncomingMessage,
    ) {
      this.#request = request;
    }

    get address(): string {
      if (this.#address === undefined) {
        const request = this.#request;
        this.#address = request
          ? (transport.clientAddress?.(request) ?? request.socket.remoteAddress ?? 'unknown')
          : 'unknown';
        this.#request = undefined;
      }
      return this.#address;
    }

    settled(): void {
      this.#request = undefined;
    }
  }

  function onPong(this: WebSocket) {
    const connection = connections.get(this);
    if (connection) connection.alive = true;
  }
  function onError(this: WebSocket, error: Error) {
    log.warn({ err: error }, 'subscription socket failed');
    this.close(CloseCode.InternalServerError, reason(error));
  }
  function onMessage(this: WebSocket, data: WebSocket.RawData) {
    const text = String(data);
    const unexpected = serverOnlyType(text);
    if (unexpected) {
      // graphql-ws throws on these (a 4500, as if the server failed): the client broke the protocol.
      this.close(CloseCode.BadRequest, `Unexpected message of type ${unexpected} received`);
      return;
    }
    // Not awaited: graphql-ws's handling of a `subscribe` lasts as long as the subscription.
    connections
      .get(this)
      ?.handle?.(text)
      .catch((error: unknown) => {
        log.error({ err: error }, 'could not handle a graphql-ws message');
        this.close(CloseCode.InternalServerError, reason(error));
      });
  }
  function onClose(this: WebSocket, code: number, why: Buffer) {
    const connection = connections.get(this);
    connections.delete(this);
    if (code === CloseCode.SubprotocolNotAcceptable && this.protocol === DEPRECATED_GRAPHQL_WS_PROTOCOL) {
      log.warn('a client spoke subscriptions-transport-ws, which is not served: use graphql-ws (graphql-transport-ws)');
    }
    void connection?.closed?.(code, String(why));
  }

  wss.once('error', (error) => {
    log.error({ err: error }, 'the subscription WebSocket server failed');
    for (const socket of wss.clients) socket.close(CloseCode.InternalServerError, reason(error));
  });

  wss.on('connection', (socket, request) => {
    const connection = new ServedSocket(socket);
    connections.set(socket, connection);
    socket.on('pong', onPong);
    socket.on('error', onError);
    socket.on('message', onMessage);
    socket.on('close', onClose);
    connection.closed = server.opened(connection, new ServedExtra(socket, request));
  });

  // One sweep over every socket per keep-alive period, spread over the period in slices: a socket
  // that did not answer the previous ping (a period ago) is dropped, any other is pinged again.
  // A sweep starts a period after the previous one started, however few sockets there are.
  let sweep: IterableIterator<ServedSocket> | undefined;
  let sweepStarted = Date.now();
  const timer =
    transport.keepAliveMs > 0
      ? setInterval(() => {
          if (!sweep) {
            if (Date.now() - sweepStarted < transport.keepAliveMs) return;
            sweepStarted = Date.now();
            sweep = connections.values();
          }
          for (let budget = Math.ceil(connections.size / KEEP_ALIVE_SLICES); budget > 0; budget--) {
            const next = sweep.next();
            if (next.done) {
              sweep = undefined;
              return;
            }
            const { value: connection } = next;
            if (connection.socket.readyState !== WebSocket.OPEN) continue;
            if (!connection.alive) {
              connection.socket.terminate();
              continue;
            }
            connection.alive = false;
            connection.socket.ping();
          }
        }, transport.keepAliveMs / KEEP_ALIVE_SLICES)
      : undefined;
  timer?.unref();

  return {
    async dispose() {
      clearInterval(timer);
      for (const socket of wss.clients) socket.close(1001, 'Going away');
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

/** Where and how serveGraphqlWs serves, with every default already applied (see SubscriptionServerOptions). */
export interface GraphqlWsTransportOptions extends GraphqlWsOptions {
  /** The gateway's HTTP server: graphql-ws shares it (and the path) with queries. */
  server: HttpServer;
  path: string;
  /** Largest incoming WebSocket message. */
  maxMessageBytes: number;
  /** Subscriptions one connection may hold at once. */
  maxSubscriptionsPerConnection: number;
  /** Verifies a client's `Authorization` value, from the `connection_init` payload. */
  verify(authorization: string | undefined): Promise<VerifiedBearer>;
  /**
   * Rate limits connection attempts and subscribes (see SubscriptionServerOptions.admit); the
   * address is given only without an identity ('' with one).
   */
  admit?: (identity: Identity | undefined, address: string) => Promise<Admission>;
  /** Whether an upgrade request may open a socket (its `Origin`); refused with 403. @default all */
  allowUpgrade?: (request: IncomingMessage) => boolean;
}

/** The engine served over graphql-ws. */
export interface GraphqlWsTransport {
  /** Closes every socket with 1001 going away, waits up to `graceMs` for them to go, and terminates what is left. */
  close(graceMs: number): Promise<void>;
}

/**
 * Serves the engine over graphql-ws (graphql-transport-ws) on the HTTP server's path: the bearer
 * token of `connection_init` opens a connection (close 4403 without a valid one), each `subscribe`
 * is prepared by the engine (its errors are the `error` message) and started as the iterator
 * graphql-ws drives.
 */
export function serveGraphqlWs(engine: SubscriptionEngine, options: GraphqlWsTransportOptions): GraphqlWsTransport {
  const { log, verify, maxSubscriptionsPerConnection: maxPerConnection, allowUpgrade } = options;
  const wss = new WebSocketServer({
    server: options.server,
    path: options.path,
    maxPayload: options.maxMessageBytes,
    handleProtocols,
    // A page of an origin not allowed cannot open a socket with its user's token (cross-site WebSocket hijacking).
    ...(allowUpgrade && {
      verifyClient: (
        { req }: { req: IncomingMessage },
        done: (allowed: boolean, code?: number, message?: string) => void,
      ) => (allowUpgrade(req) ? done(true) : done(false, 403, 'Origin not allowed')),
    }),
  });
  // The upgrade's answer carries the request id, as every HTTP answer of the gateway does, and so
  // does the connection's access line (access-log.ts), written when it closes.
  const accessLog = createConnectionLog(log);
  wss.on('headers', (headers, request) => {
    headers.push(`${REQUEST_ID_HEADER}: ${accessLog.upgraded(request)}`);
  });
  wss.on('connection', (socket, request) => accessLog.opened(socket, request));

  const graphqlWs = useGraphqlWs(
    {
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        if (engine.closing) {
          socket.close(SubscriptionCloseCode.GoingAway, 'going away');
          return false;
        }
        const authorization = ctx.connectionParams?.authorization;
        let verified: VerifiedBearer | undefined;
        let refusal = 'Forbidden';
        try {
          verified = await verify(typeof authorization === 'string' ? authorization : undefined);
        } catch (failure) {
          if (failure instanceof AuthenticationError) refusal = `Forbidden: ${failure.message}`;
        }
        // A connection attempt counts against its caller's limit, or its address's without a valid token.
        const admission = await options.admit?.(verified?.identity, verified ? '' : ctx.extra.address);
        ctx.extra.settled();
        if (admission && !admission.allowed) {
          socket.close(
            SubscriptionCloseCode.TooManyRequests,
            `Too many requests: retry after ${admission.retryAfterSeconds} s`,
          );
          return false;
        }
        if (!verified) {
          socket.close(SubscriptionCloseCode.Forbidden, refusal);
          return false;
        }
        if (socket.readyState !== WebSocket.OPEN) return false;
        accessLog.identified(socket, verified.identity);
        engine.openConnection(new WebSocketPeer(socket), socket, verified.identity, verified.expiresAt);
        return true;
      },
      onClose: (ctx, code, reason) => {
        const connection = engine.connection(ctx.extra.socket);
        if (connection) engine.dropConnection(connection);
        accessLog.closed(ctx.extra.socket, code, reason);
      },
      onSubscribe: async (ctx, id, payload) => {
        const connection = engine.connection(ctx.extra.socket);
        if (!connection || connection.cut) return [codedError('UNAUTHENTICATED', 'the connection is closing')];
        if (options.admit) {
          // Each subscribe counts against its caller's rate limit; one refused leaves the connection open.
          const admission = await options.admit(connection.identity, '');
          if (!admission.allowed) {
            const seconds = admission.retryAfterSeconds;
            return [codedError('RATE_LIMITED', `Too many requests: retry after ${seconds} s`, { retryAfter: seconds })];
          }
          if (connection.cut) return [codedError('UNAUTHENTICATED', 'the connection is closing')];
        }
        // Nothing waits between this check and prepare()'s count: subscribes sent at once cannot
        // pass the limit of subscriptions per connection together.
        if (connection.active >= maxPerConnection) {
          return [codedError('BAD_USER_INPUT', `a connection holds at most ${maxPerConnection} subscriptions`)];
        }
        const plan = await engine.prepare(connection, id, payload);
        // The operation's name as resolved (the document's, when the payload names none).
        accessLog.subscribed(
          ctx.extra.socket,
          isErrors(plan) ? payload.operationName : plan.compiled.operation.name?.value,
        );
        if (isErrors(plan)) return plan;
        return {
          schema: plan.served.schema,
          document: plan.compiled.document,
          operationName: payload.operationName,
          contextValue: plan,
        };
      },
      subscribe: (args) => engine.subscribe(args.contextValue as Plan),
    },
    wss,
    options,
  );

  return {
    async close(graceMs) {
      const disposed = Promise.resolve(graphqlWs.dispose()).catch((failure: unknown) =>
        log.warn({ err: failure }, 'graphql-ws did not stop cleanly'),
      );
      const grace = new Promise((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([disposed, grace]);
      for (const socket of wss.clients) socket.terminate();
    },
  };
}
