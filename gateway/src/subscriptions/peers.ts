import type { ServerResponse } from 'node:http';
import { CloseCode } from 'graphql-ws';
import { WebSocket } from 'ws';

/** How the gateway closes a subscription socket, besides graphql-ws's own protocol codes. */
export const SubscriptionCloseCode = {
  /** graphql-ws's Forbidden: the bearer token is missing, invalid, or expired (also mid-connection). */
  Forbidden: CloseCode.Forbidden,
  /** The client stopped reading and its send buffer filled: reconnect and resume with the last cursor. */
  SlowConsumer: 1013,
  /** The gateway is shutting down: reconnect (to another replica) and resume with the last cursor. */
  GoingAway: 1001,
  /** The caller is over its rate limit (connection attempts): reconnect after the seconds the reason gives. */
  TooManyRequests: CloseCode.TooManyInitialisationRequests,
} as const;

/** The close reason sent with `SlowConsumer`. */
export const SLOW_CONSUMER_REASON = 'slow consumer: resume with your cursor';

/**
 * The client end of a subscription connection, as the engine writes to it: a graphql-ws socket,
 * or a GraphQL-over-SSE response. Classes, with nothing per instance but the transport's handle:
 * a connection holds one for its life.
 */
export interface Peer {
  /** Whether frames can still be sent. */
  readonly writable: boolean;
  /** Bytes sent and not yet handed to the network. */
  readonly buffered: number;
  /** The text before and after a result in the frame of subscription `id`'s events. */
  framing(id: string): readonly [before: string, after: string];
  send(frame: string): void;
  /** Closes the connection of a client that stopped reading (it resumes with its cursor). */
  cutOff(graceMs: number): void;
  /**
   * Closes the connection because its token expired or, with another `reason`, because its
   * credentials stopped being valid (a revoked API key). @default reason 'token expired'
   */
  expire(reason?: string): void;
}

const WS_AFTER = '}';

export class WebSocketPeer implements Peer {
  constructor(readonly socket: WebSocket) {}

  get writable(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  get buffered(): number {
    return this.socket.bufferedAmount;
  }

  framing(id: string): readonly [string, string] {
    // Joined, not concatenated: a flat string (a template literal makes a rope of its pieces),
    // kept as long as the subscription and sent with every event.
    return [['{"id":', JSON.stringify(id), ',"type":"next","payload":'].join(''), WS_AFTER];
  }

  send(frame: string): void {
    this.socket.send(frame);
  }

  cutOff(graceMs: number): void {
    this.socket.close(SubscriptionCloseCode.SlowConsumer, SLOW_CONSUMER_REASON);
    setTimeout(() => this.socket.terminate(), graceMs).unref();
  }

  expire(reason = 'token expired'): void {
    this.socket.close(SubscriptionCloseCode.Forbidden, `Forbidden: ${reason}`);
  }
}

/** GraphQL over Server-Sent Events, distinct connections mode: one response per operation. */
const SSE_NEXT = 'event: next\ndata: ';
const SSE_AFTER = '\n\n';

/** The frames of an SSE stream. */
export const sseFrame = {
  /** A comment: sent first (some browsers wait for a first byte) and as keep-alive. */
  ping: ':\n\n',
  next: (result: string) => SSE_NEXT + result + SSE_AFTER,
  complete: 'event: complete\ndata: \n\n',
};

export class SsePeer implements Peer {
  constructor(readonly response: ServerResponse) {}

  get writable(): boolean {
    return !this.response.writableEnded && !this.response.destroyed;
  }

  get buffered(): number {
    return this.response.writableLength;
  }

  framing(): readonly [string, string] {
    return [SSE_NEXT, SSE_AFTER];
  }

  send(frame: string): void {
    this.response.write(frame);
  }

  cutOff(): void {
    // Its buffer is full: nothing more can reach it. The client sees the stream break and
    // resubscribes `after` its last cursor.
    this.response.destroy();
  }

  expire(reason = 'token expired'): void {
    if (!this.writable) return;
    this.response.end(
      sseFrame.next(
        JSON.stringify({ errors: [{ message: `Forbidden: ${reason}`, extensions: { code: 'UNAUTHENTICATED' } }] }),
      ),
    );
  }
}
