import type { ApolloServerPlugin } from '@apollo/server';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { REQUEST_ID_HEADER, type Logger } from '../log.js';
import { currentScope, withScope } from '../scope.js';
import { tracer } from '../tracing.js';

/**
 * What every HTTP process records of each request: a server span (continuing the caller's trace
 * from `traceparent`) and one access log line when the response is over. Neither ever holds a
 * credential, a query string or a variable's value.
 */

/** What the code serving a request tells its access line (see noteRequest). */
interface RequestNote {
  operationName?: string;
  caller?: string;
  tenantId?: string;
}

/**
 * Tells the access line (and the server span) of the current HTTP request who called and which
 * GraphQL operation ran. Outside a request, does nothing.
 */
export function noteRequest(note: RequestNote): void {
  const current = currentScope()?.note;
  if (current) Object.assign(current, note);
}

/** Probes and scrapes: logged at debug level only, and without a span. */
const QUIET_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/** The route of a path, for span names (bounded: ids stay out). */
function routeOf(path: string): string | undefined {
  if (path === '/graphql' || path === '/graphql/stream') return path;
  if (path.startsWith('/logs/download/')) return '/logs/download/{bundleId}/{fileName}';
  return undefined;
}

/**
 * The middleware that traces and logs every request (after `requestIds()`, whose id it logs):
 * a SERVER span named `<method> <route>`, the caller's trace continued, and at the end one line
 * `http request` with the method, path, status, duration, GraphQL operation name and caller.
 */
export function observeRequests(log: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const path = req.path;
    const quiet = QUIET_PATHS.has(path);
    const note: Record<string, string> & RequestNote = {};
    const route = routeOf(path);
    const method = req.method;
    const span = quiet
      ? undefined
      : tracer.startSpan(
          route ? `${method} ${route}` : method,
          {
            kind: SpanKind.SERVER,
            attributes: { 'http.request.method': method, 'url.path': path, ...(route && { 'http.route': route }) },
          },
          propagation.extract(ROOT_CONTEXT, req.headers),
        );
    res.once('close', () => {
      const durationMs = Math.round((performance.now() - started) * 100) / 100;
      const status = res.statusCode;
      const ids = span?.spanContext();
      if (span) {
        span.setAttribute('http.response.status_code', status);
        if (note.operationName) span.setAttribute('graphql.operation.name', note.operationName);
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        if (!res.writableFinished) span.setAttribute('fleetgraph.http.aborted', true);
        span.end();
      }
      const line = {
        method,
        path,
        status,
        durationMs,
        ...(note.operationName && { operationName: note.operationName }),
        ...(note.caller && { caller: note.caller, tenantId: note.tenantId }),
        ...(!res.writableFinished && { aborted: true }),
        requestId: res.getHeader(REQUEST_ID_HEADER),
        ...(ids && trace.isSpanContextValid(ids) && { traceId: ids.traceId, spanId: ids.spanId }),
      };
      if (quiet) log.debug(line, 'http request');
      else log.info(line, 'http request');
    });
    // The notes travel in the request's scope (scope.ts), as its id and its span do.
    const run = () => withScope({ note }, next);
    if (span) context.with(trace.setSpan(context.active(), span), run);
    else run();
  };
}

/**
 * An Apollo Server plugin that tells the access line the operation's name as resolved (the
 * document's, when the request names none).
 */
export function useOperationNotes<T extends object>(): ApolloServerPlugin<T> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operationName }) {
          if (operationName) noteRequest({ operationName });
        },
      };
    },
  };
}
