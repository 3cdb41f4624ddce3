import type { Logger } from '@fleetgraph/kit';
import { CloseCode, DEPRECATED_GRAPHQL_WS_PROTOCOL, makeServer, type ServerOptions, type WebSocket as GraphqlWsSocket } from 'graphql-ws';
import { WebSocket, type WebSocketServer } from 'ws';

/** What graphql-ws hands the engine's hooks as `ctx.extra`. */
export interface SocketExtra {
  readonly socket: WebSocket;
}

export interface GraphqlWsOptions {
  /** Hides internal error messages in close reasons. */
  production: boolean;
  /**
   * Every socket is pinged this often, and terminated when it has not answered the previous ping.
   * 0 turns pings off.
   */
  keepAliveMs: number;
  log: Logger;
}

/**
 * Pings go out in this many slices per keep-alive period (every 100 ms for 12 s), so that 10,000
 * sockets do not hold up the event loop, and the events waiting behind it, at once.
 */
const KEEP_ALIVE_SLICES = 120;

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
export function useGraphqlWs(options: ServerOptions<{ authorization?: unknown }, SocketExtra>, wss: WebSocketServer, transport: GraphqlWsOptions): { dispose(): Promise<void> } {
  const { log, production } = transport;
  const server = makeServer(options);
  const connections = new Map<WebSocket, ServedSocket>();
  const reason = (error: unknown) => (production ? 'Internal server error' : (error instanceof Error ? error.message : String(error)).slice(0, 120) || 'Internal server error');

  function onPong(this: WebSocket) {
    const connection = connections.get(this);
    if (connection) connection.alive = true;
  }
  function onError(this: WebSocket, error: Error) {
    log.warn({ err: error }, 'subscription socket failed');
    this.close(CloseCode.InternalServerError, reason(error));
  }
  function onMessage(this: WebSocket, data: WebSocket.RawData) {
    // Not awaited: graphql-ws's handling of a `subscribe` lasts as long as the subscription.
    connections
      .get(this)
      ?.handle?.(String(data))
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

  wss.on('connection', (socket) => {
    const connection = new ServedSocket(socket);
    connections.set(socket, connection);
    socket.on('pong', onPong);
    socket.on('error', onError);
    socket.on('message', onMessage);
    socket.on('close', onClose);
    connection.closed = server.opened(connection, { socket });
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
