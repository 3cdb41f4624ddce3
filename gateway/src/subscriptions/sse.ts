import type { IncomingMessage, ServerResponse } from 'node:http';
import { AuthenticationError, noteRequest, type ErrorCode, type VerifiedBearer } from '@fleetgraph/kit/core';
import type { SubscribePayload } from 'graphql-ws';
import type { SubscriptionEngine } from './engine.js';
import { codedError, isErrors } from './errors.js';
import { GraphQLError } from './graphql.js';
import { SsePeer, sseFrame } from './peers.js';

/** How createSseTransport serves. */
export interface SseTransportOptions {
  /** Verifies a client's `Authorization` header. */
  verify(authorization: string | undefined): Promise<VerifiedBearer>;
  /** A `:` comment goes to every idle stream this often. 0 turns them off. */
  keepAliveMs: number;
}

/** The engine served over Server-Sent Events. */
export interface SseTransport {
  /**
   * Serves one subscription over Server-Sent Events (GraphQL over SSE, distinct connections mode):
   * GET or POST (with the body already parsed as JSON) with `Accept: text/event-stream`.
   */
  serve(request: IncomingMessage & { body?: unknown }, response: ServerResponse): Promise<void>;
  /** Stops the keep-alive comments and ends every stream without `complete` (idempotent). */
  close(): void;
}

/** A JSON answer before any stream opens (graphql-response+json errors, as for queries). */
function refuse(
  response: ServerResponse,
  status: number,
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
) {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  response.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

/** The operation of an SSE request: GET search parameters or a POST's JSON body. */
function sseOperation(request: IncomingMessage & { body?: unknown }): SubscribePayload | string {
  let raw: Record<string, unknown>;
  if (request.method === 'GET') {
    const search = new URL(request.url ?? '/', 'http://gateway').searchParams;
    raw = { query: search.get('query') ?? undefined, operationName: search.get('operationName') ?? undefined };
    const variables = search.get('variables');
    if (variables) {
      try {
        raw.variables = JSON.parse(variables) as unknown;
      } catch {
        return 'variables must be a JSON object';
      }
    }
  } else {
    if (request.body === null || typeof request.body !== 'object' || Array.isArray(request.body))
      return 'the body must be a JSON object';
    raw = request.body as Record<string, unknown>;
  }
  const { query, variables, operationName } = raw;
  if (typeof query !== 'string' || query.length === 0) return 'query must be a non-empty string';
  if (variables != null && (typeof variables !== 'object' || Array.isArray(variables)))
    return 'variables must be a JSON object';
  if (operationName != null && typeof operationName !== 'string') return 'operationName must be a string';
  return {
    query,
    variables: (variables ?? null) as Record<string, unknown> | null,
    operationName: operationName ?? null,
  };
}

/**
 * GraphQL over SSE, distinct connections mode (the protocol graphql-sse's client speaks): one
 * subscription per response. The engine is the same as for graphql-ws (authorisation, shared
 * consumers and executions, frames serialized once) and so are the limits: the response's
 * unsent bytes are bounded like a socket's (over the limit the stream is cut, and the client
 * resubscribes `after` its last cursor), a token that expires ends the stream with an
 * UNAUTHENTICATED error, and at shutdown streams end without `complete`, so clients reconnect.
 * graphql-sse's own handler is not used: it queues results without bound while a client reads
 * slowly, and would serialize every result again for each subscriber.
 */
export function createSseTransport(engine: SubscriptionEngine, options: SseTransportOptions): SseTransport {
  const { verify, keepAliveMs } = options;
  /** SSE streams open, for keep-alive comments and shutdown. */
  const streams = new Set<ServerResponse>();
  const pings =
    keepAliveMs > 0
      ? setInterval(() => {
          for (const response of streams) {
            // Not after end() (writing then would throw), and not on top of frames still waiting.
            if (!response.writableEnded && !response.destroyed && response.writableLength === 0)
              response.write(sseFrame.ping);
          }
        }, keepAliveMs).unref()
      : undefined;

  async function serve(request: IncomingMessage & { body?: unknown }, response: ServerResponse): Promise<void> {
    // The client may leave while its token is verified: nothing may be opened for it then.
    let gone = false;
    const leftEarly = () => (gone = true);
    response.once('close', leftEarly);
    if (engine.closing) return refuse(response, 503, 'SERVICE_UNAVAILABLE', 'the gateway is shutting down; retry');
    if (!(request.headers.accept ?? '').includes('text/event-stream')) {
      return refuse(response, 406, 'BAD_USER_INPUT', 'subscriptions over SSE need "Accept: text/event-stream"');
    }
    let verified: VerifiedBearer;
    try {
      verified = await verify(request.headers.authorization);
    } catch (failure) {
      const message =
        failure instanceof AuthenticationError ? `Unauthenticated: ${failure.message}` : 'Unauthenticated';
      return refuse(response, 401, 'UNAUTHENTICATED', message, { 'www-authenticate': 'Bearer' });
    }
    noteRequest({ caller: verified.identity.userId, tenantId: verified.identity.tenantId });
    const payload = sseOperation(request);
    if (typeof payload === 'string') return refuse(response, 400, 'BAD_USER_INPUT', payload);
    if (payload.operationName) noteRequest({ operationName: payload.operationName });
    if (gone) return;
    if (engine.closing) return refuse(response, 503, 'SERVICE_UNAVAILABLE', 'the gateway is shutting down; retry');
    response.off('close', leftEarly);

    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // Proxies such as nginx would otherwise hold the events back.
      'x-accel-buffering': 'no',
    });
    response.write(sseFrame.ping);
    streams.add(response);
    const connection = engine.openConnection(new SsePeer(response), response, verified.identity, verified.expiresAt);
    response.once('close', () => {
      streams.delete(response);
      engine.dropConnection(connection);
    });
    const finish = (errors?: readonly GraphQLError[]) => {
      if (response.writableEnded || response.destroyed) return;
      const last = errors ? sseFrame.next(JSON.stringify({ errors: errors.map((e) => e.toJSON()) })) : '';
      response.end(last + sseFrame.complete);
    };

    const plan = await engine.prepare(connection, '', payload);
    if (isErrors(plan)) return finish(plan);
    const subscription = await engine.subscribe(plan);
    try {
      await subscription.next();
      // Ended by the client leaving, by a cut-off or an expired token (the stream is over then),
      // by the binding's `complete` condition, or by shutdown (see close: no `complete` then).
      if (!engine.closing) finish();
    } catch (failure) {
      finish([
        failure instanceof GraphQLError ? failure : codedError('INTERNAL_SERVER_ERROR', 'Internal server error'),
      ]);
    }
  }

  return {
    serve,
    close() {
      if (pings) clearInterval(pings);
      // Without `complete`: to an SSE client, the stream broke, and it subscribes again (elsewhere).
      for (const response of streams) response.end();
    },
  };
}
