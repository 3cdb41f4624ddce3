import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { currentScope, withScope } from './scope.js';
import { activeTraceIds } from './tracing.js';

export type { Logger };

/** What travels with a unit of work: from the gateway to a subgraph to a NATS message and back. */
export interface RequestScope {
  requestId: string;
}

/** What a request id taken from a client or a message may look like: a UUID, a ULID, a trace id. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:+=@/-]{1,128}$/;

/** The request id to use for an incoming one: itself when it looks like an id, else a new UUID. */
export function requestIdOf(incoming: string | undefined | null): string {
  return incoming && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Runs `fn` with a request id that loggers and the bus pick up: `requestId` when it looks like an
 * id (requestIdOf), else a new one.
 */
export function withRequestScope<T>(requestId: string | undefined, fn: () => T): T {
  // Kept in the kit's one AsyncLocalStorage (scope.ts), with the trace context that is active.
  return withScope({ requestId: requestIdOf(requestId), note: undefined }, fn);
}

/** The request id of the current unit of work, if any. */
export function currentRequestId(): string | undefined {
  return currentScope()?.requestId;
}

/** The header that carries the request id over HTTP and NATS. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What every log line carries: the request id, and inside a span its trace and span ids (tracing.ts). */
export function logContext(): { requestId?: string; traceId?: string; spanId?: string } {
  const requestId = currentRequestId();
  const ids = activeTraceIds();
  if (!ids) return requestId ? { requestId } : {};
  return requestId ? { requestId, ...ids } : ids;
}

/**
 * A structured logger that stamps every line with the current request id, and inside a span with
 * `traceId` and `spanId`.
 */
export function createLogger(service: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    mixin: logContext,
  });
}
