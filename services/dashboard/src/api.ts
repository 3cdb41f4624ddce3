/**
 * The dashboard's only way to the API: GraphQL over HTTP (fetch) for queries and mutations, and
 * one graphql-ws connection for every subscription, with the bearer token in `connection_init`.
 * Operations are the typed documents generated from client/operations (the trusted documents).
 */
import { operationBody, operationName } from '@fleetgraph/client';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient, type Client } from 'graphql-ws';

/** A GraphQL error of the API, with its code from the API's error registry. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Where the live connection is: the banner shows `lost` and, for a moment, `restored`. */
export type LiveStatus = 'connecting' | 'live' | 'lost' | 'ended';

export interface Api {
  request<R, V extends Record<string, unknown>>(document: TypedDocumentNode<R, V>, variables?: V): Promise<R>;
  /**
   * Subscribes; results go to `onData` until the returned function is called. The variables object
   * is sent again as it is when the connection comes back, so a follower that updates its cursor in
   * it resumes after the last event it got.
   */
  subscribe<R, V extends Record<string, unknown>>(
    document: TypedDocumentNode<R, V>,
    variables: V,
    onData: (data: R) => void,
    onError?: (error: ApiError) => void,
  ): () => void;
  status(): LiveStatus;
  onStatus(listener: (status: LiveStatus) => void): () => void;
  close(): void;
}

/** The gateway's GraphQL URL: the page's own origin, unless the build names another (VITE_FLEETGRAPH_URL). */
export function graphqlUrl(): string {
  return (import.meta.env.VITE_FLEETGRAPH_URL as string | undefined) || new URL('/graphql', location.href).href;
}

interface GraphQLError {
  message: string;
  extensions?: { code?: string };
}

function asApiError(error: unknown): ApiError {
  if (Array.isArray(error) && typeof error[0]?.message === 'string') {
    const first = error[0] as GraphQLError;
    return new ApiError(first.message, first.extensions?.code);
  }
  if (error instanceof ApiError) return error;
  if (error && typeof error === 'object' && 'code' in error) {
    const { code, reason } = error as { code: number; reason?: string };
    return new ApiError(reason || `the connection closed (${code})`, code === 4403 ? 'UNAUTHENTICATED' : undefined);
  }
  return new ApiError(error instanceof Error ? error.message : String(error), undefined);
}

/**
 * Creates the API client of a signed-in user. `onSignedOut` is called when the API refuses the
 * token (HTTP 401, graphql-ws close 4403): it expired or was revoked.
 */
export function createApi(token: string, onSignedOut: (reason: string) => void): Api {
  const url = graphqlUrl();
  let status: LiveStatus = 'connecting';
  const listeners = new Set<(status: LiveStatus) => void>();
  const setStatus = (next: LiveStatus) => {
    if (status === next || status === 'ended') return;
    status = next;
    for (const listener of listeners) listener(next);
  };
  const refused = (reason: string) => {
    setStatus('ended');
    onSignedOut(reason);
  };

  const ws: Client = createClient({
    url: url.replace(/^http/, 'ws'),
    connectionParams: { authorization: `Bearer ${token}` },
    // One connection for the page's life: the banner tells when it is lost, even between subscriptions.
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    // 500 ms doubling to 4 s, with jitter: a restarted gateway is not met by every tab at once.
    retryWait: (retries) =>
      new Promise((resolve) => setTimeout(resolve, Math.min(4_000, 500 * 2 ** retries) * (0.75 + Math.random() / 2))),
    // A refused token (4403) or a refused origin is final; anything else is a network problem: retry.
    shouldRetry: (event) => !(event && typeof event === 'object' && 'code' in event && event.code === 4403),
    onNonLazyError: (error) => {
      const failure = asApiError(error);
      if (failure.code === 'UNAUTHENTICATED') refused(failure.message);
      else setStatus('lost');
    },
    on: {
      connected: () => setStatus('live'),
      closed: (event) => {
        const code = (event as { code?: number } | undefined)?.code;
        if (code === 4403) refused((event as { reason?: string }).reason || 'Forbidden');
        else setStatus('lost');
      },
    },
  });

  return {
    async request(document, variables) {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          authorization: `Bearer ${token}`,
        },
        body: JSON.stringify({
          query: operationBody(document),
          operationName: operationName(document),
          variables: variables ?? {},
        }),
      });
      let body: { data?: unknown; errors?: GraphQLError[] };
      try {
        body = await response.json();
      } catch {
        throw new ApiError(`the gateway answered ${response.status}`, undefined, response.status);
      }
      const first = body.errors?.[0];
      if (response.status === 401 || first?.extensions?.code === 'UNAUTHENTICATED') {
        refused(first?.message ?? 'Unauthenticated');
        throw new ApiError(first?.message ?? 'Unauthenticated', 'UNAUTHENTICATED', response.status);
      }
      if (first && !body.data) throw new ApiError(first.message, first.extensions?.code, response.status);
      if (!body.data) throw new ApiError(`the gateway answered ${response.status}`, undefined, response.status);
      return body.data as never;
    },
    subscribe(document, variables, onData, onError) {
      return ws.subscribe(
        { query: operationBody(document), operationName: operationName(document), variables },
        {
          next: (result) => {
            if (result.errors?.length) onError?.(asApiError(result.errors));
            else if (result.data) onData(result.data as never);
          },
          error: (error) => onError?.(asApiError(error)),
          complete: () => {},
        },
      );
    },
    status: () => status,
    onStatus(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      listeners.clear();
      void ws.dispose();
    },
  };
}
