import type { ErrorRequestHandler, Express, RequestHandler } from 'express';
import type { GraphQLError, GraphQLFormattedError } from 'graphql';
import { currentRequestId, REQUEST_ID_HEADER, requestIdOf, withRequestScope, type Logger } from '../log.js';

/**
 * What every HTTP process of the platform serves beside its own routes: /healthz and /readyz,
 * errors masked for clients, JSON body errors as GraphQL errors.
 */

/** One thing a process needs to do its work, checked by GET /readyz. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/** The readiness checks of a service on NATS and a store. */
export function busAndStoreReadiness(
  bus: { ping(): Promise<void>; jetStreamReady(): Promise<void> },
  store: { ping(): Promise<void> },
): ReadinessCheck[] {
  return [
    { name: 'nats', check: () => bus.ping() },
    { name: 'jetstream', check: () => bus.jetStreamReady() },
    { name: 'store', check: () => store.ping() },
  ];
}

/**
 * Runs each request in a request scope whose id is the request's `x-request-id` when it looks like
 * an id, else a new one, and answers that id in the response's `x-request-id`, whatever the answer.
 */
export function requestIds(): RequestHandler {
  return (req, res, next) => {
    const requestId = requestIdOf(req.header(REQUEST_ID_HEADER));
    res.setHeader(REQUEST_ID_HEADER, requestId);
    withRequestScope(requestId, next);
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

/** Masks what is not meant for clients: unknown errors become INTERNAL_SERVER_ERROR, never a stack trace. */
export function formatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.code;
    // Errors raised on purpose carry a code (ours, or Apollo's for parse and validation failures).
    if (typeof code === 'string' && code !== 'INTERNAL_SERVER_ERROR') return formatted;
    // Apollo's own refusals of a request (a persisted query whose hash does not match, say) come
    // without a code but with a 4xx status: the client's error, told as it is.
    const status = (error as GraphQLError | undefined)?.extensions?.http as { status?: unknown } | undefined;
    if (typeof status?.status === 'number' && status.status < 500)
      return { ...formatted, extensions: { ...formatted.extensions, code: 'BAD_REQUEST' } };
    log.error(
      { err: (error as GraphQLError)?.originalError ?? error, path: formatted.path },
      'unexpected error in resolver',
    );
    return {
      message: 'Internal server error',
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: currentRequestId() },
    };
  };
}

/** A body that is too large or not JSON gets a GraphQL-shaped error, not an HTML page. */
export function jsonBodyErrors(limit: string): ErrorRequestHandler {
  return (error, _req, res, next) => {
    const status = typeof error?.status === 'number' ? error.status : 500;
    if (status >= 500) return next(error);
    const message =
      error.type === 'entity.too.large' ? `request body is larger than ${limit}` : 'request body is not valid JSON';
    res.status(status).json({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });
  };
}
