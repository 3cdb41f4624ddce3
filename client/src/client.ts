import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { operationBody, operationHash, operationName } from './documents.js';
import { FollowClusterEventsDocument, type FollowClusterEventsSubscription } from './generated/graphql.js';

/** A GraphQL error as the API returns it: its message and its code (see the API's error registry). */
export class FleetgraphError extends Error {
  constructor(
    message: string,
    /** `extensions.code`, e.g. UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT, RATE_LIMITED. */
    readonly code: string | undefined,
    /** The HTTP status, for errors of an HTTP request. */
    readonly status?: number,
    /** Seconds to wait before trying again, when the API said so (RATE_LIMITED). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'FleetgraphError';
  }
}

export interface FleetgraphClientOptions {
  /** The gateway's GraphQL endpoint over HTTP, e.g. `http://127.0.0.1:4000/graphql`; its WebSocket URL is derived. */
  url: string;
  /** A bearer token or API key, or a function giving the current one (called per request and per connection). */
  token: string | (() => string | Promise<string>);
  /**
   * Send the operation's hash alone (a trusted document), falling back to the whole document only
   * when the gateway does not know it. The gateway in `enforce` mode runs nothing else.
   */
  persisted?: boolean;
  /** A WebSocket implementation for Node 20, which has none built in (e.g. `ws`). */
  webSocketImpl?: unknown;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** The variables of an operation. */
export type Variables = Record<string, unknown>;

/** What `followClusterEvents` reports. */
export type ClusterEvent = FollowClusterEventsSubscription['clusterEvents'];

export interface FollowOptions {
  /** A cursor to resume after (an event's or one from Cluster.events). */
  after?: string | null;
  /** Stops following. */
  signal?: AbortSignal;
  /** How long to wait before resuming after the connection or the subscription was lost. @default 1000 */
  retryMs?: number;
  /** Called on each loss, before resuming; to log it. */
  onResume?: (error: unknown, after: string | null) => void;
}

/**
 * A typed client of the Fleetgraph API: `request` runs a query or a mutation over HTTP,
 * `subscribe` a subscription over graphql-ws, `followClusterEvents` follows a cluster's events,
 * resuming after its last cursor when the connection is lost, with no gap and no duplicate.
 */
export interface FleetgraphClient {
  request<R, V extends Variables>(document: TypedDocumentNode<R, V>, variables?: V): Promise<R>;
  /** Each result of a subscription, until it completes, fails (a throw) or `signal` aborts. */
  subscribe<R, V extends Variables>(
    document: TypedDocumentNode<R, V>,
    variables?: V,
    signal?: AbortSignal,
  ): AsyncGenerator<R>;
  followClusterEvents(clusterId: string, options?: FollowOptions): AsyncGenerator<ClusterEvent>;
  /** Closes the WebSocket, if one was opened. */
  close(): Promise<void>;
}

export function createFleetgraphClient(options: FleetgraphClientOptions): FleetgraphClient {
  const doFetch = options.fetch ?? globalThis.fetch;
  const token = async () => (typeof options.token === 'function' ? options.token() : options.token);
  let ws: WsClient | undefined;

  async function post(
    body: Record<string, unknown>,
  ): Promise<{ status: number; headers: Headers; json: GraphQLResponse }> {
    const response = await doFetch(options.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        authorization: `Bearer ${await token()}`,
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    let json: GraphQLResponse;
    try {
      json = JSON.parse(text) as GraphQLResponse;
    } catch {
      throw new FleetgraphError(`HTTP ${response.status}: ${text.slice(0, 200)}`, undefined, response.status);
    }
    return { status: response.status, headers: response.headers, json };
  }

  async function request<R, V extends Variables>(document: TypedDocumentNode<R, V>, variables?: V): Promise<R> {
    const base = { operationName: operationName(document), variables: variables ?? {} };
    const persistedQuery = { version: 1, sha256Hash: await operationHash(document) };
    let answer = options.persisted
      ? await post({ ...base, extensions: { persistedQuery } })
      : await post({ ...base, query: operationBody(document) });
    if (options.persisted && answer.json.errors?.some((e) => e.extensions?.code === 'PERSISTED_QUERY_NOT_FOUND'))
      answer = await post({ ...base, query: operationBody(document), extensions: { persistedQuery } });
    const { json, status, headers } = answer;
    const first = json.errors?.[0];
    if (first) {
      const retryAfter = Number(headers.get('retry-after'));
      throw new FleetgraphError(
        first.message,
        first.extensions?.code as string | undefined,
        status,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
      );
    }
    if (!json.data) throw new FleetgraphError(`HTTP ${status} without data`, undefined, status);
    return json.data as R;
  }

  function socket(): WsClient {
    ws ??= createWsClient({
      url: options.url.replace(/^http/, 'ws'),
      webSocketImpl: options.webSocketImpl,
      connectionParams: async () => ({ authorization: `Bearer ${await token()}` }),
      lazy: true,
      // Resuming is the caller's (followClusterEvents resumes after its last cursor): a connection
      // lost ends the subscriptions on it with an error rather than starting them again as they were.
      retryAttempts: 0,
    });
    return ws;
  }

  async function* subscribe<R, V extends Variables>(
    document: TypedDocumentNode<R, V>,
    variables?: V,
    signal?: AbortSignal,
  ): AsyncGenerator<R> {
    if (signal?.aborted) return;
    const iterator = socket().iterate<R>({
      query: operationBody(document),
      operationName: operationName(document),
      variables: variables ?? {},
    });
    const abort = () => void iterator.return?.();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      for await (const result of iterator) {
        const first = result.errors?.[0];
        if (first) throw new FleetgraphError(first.message, first.extensions?.code as string | undefined);
        yield result.data as R;
      }
    } catch (error) {
      throw asError(error);
    } finally {
      signal?.removeEventListener('abort', abort);
      await iterator.return?.();
    }
  }

  async function* followClusterEvents(clusterId: string, follow: FollowOptions = {}): AsyncGenerator<ClusterEvent> {
    let after = follow.after ?? null;
    while (!follow.signal?.aborted) {
      try {
        for await (const { clusterEvents } of subscribe(
          FollowClusterEventsDocument,
          { clusterId, after },
          follow.signal,
        )) {
          after = clusterEvents.cursor;
          yield clusterEvents;
        }
        return;
      } catch (error) {
        if (follow.signal?.aborted) return;
        // Refusals are final; a lost connection or a retryable refusal is resumed.
        if (error instanceof FleetgraphError && FINAL_CODES.has(error.code ?? '')) throw error;
        follow.onResume?.(error, after);
        // A connection that failed is not reused: the next subscribe opens a new one.
        const lost = ws;
        ws = undefined;
        await lost?.dispose();
        await new Promise((resolve) => setTimeout(resolve, follow.retryMs ?? 1000));
      }
    }
  }

  return {
    request,
    subscribe,
    followClusterEvents,
    async close() {
      await ws?.dispose();
      ws = undefined;
    },
  };
}

/**
 * What graphql-ws throws as a FleetgraphError: the errors refusing a subscription, or a close
 * (a CloseEvent, not an Error): 4401 and 4403 are UNAUTHENTICATED and FORBIDDEN, 4429
 * RATE_LIMITED, 4400 BAD_REQUEST; other closes stay retryable.
 */
function asError(error: unknown): unknown {
  // An `error` message of graphql-ws: the errors refusing the subscription.
  if (Array.isArray(error) && typeof error[0]?.message === 'string') {
    const [first] = error as { message: string; extensions?: Record<string, unknown> }[];
    return new FleetgraphError(first!.message, first!.extensions?.code as string | undefined);
  }
  if (error instanceof Error || typeof error !== 'object' || error === null || !('code' in error)) return error;
  const { code, reason } = error as { code: number; reason?: string };
  const named = CLOSE_CODES[code];
  return new FleetgraphError(reason || `the connection closed with ${code}`, named ?? `CLOSED_${code}`);
}

const CLOSE_CODES: Record<number, string> = {
  4400: 'BAD_REQUEST',
  4401: 'UNAUTHENTICATED',
  4403: 'FORBIDDEN',
  4429: 'RATE_LIMITED',
};

/** Codes that no retry changes. */
const FINAL_CODES = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_REQUEST',
  'BAD_USER_INPUT',
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
]);

interface GraphQLResponse {
  data?: unknown;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}
