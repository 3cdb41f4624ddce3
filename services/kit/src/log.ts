import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';

export type { Logger };

/** What travels with a unit of work: from the gateway to a subgraph to a NATS message and back. */
export interface RequestScope {
  requestId: string;
}

const scope = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` with a request id that loggers and the bus pick up. */
export function withRequestScope<T>(requestId: string | undefined, fn: () => T): T {
  return scope.run({ requestId: requestId || randomUUID() }, fn);
}

/** The request id of the current unit of work, if any. */
export function currentRequestId(): string | undefined {
  return scope.getStore()?.requestId;
}

/** The header that carries the request id over HTTP and NATS. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** A structured logger that stamps every line with the current request id. */
export function createLogger(service: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    mixin: () => {
      const requestId = currentRequestId();
      return requestId ? { requestId } : {};
    },
  });
}
