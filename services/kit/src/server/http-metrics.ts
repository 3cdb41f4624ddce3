import type { RequestHandler } from 'express';
import { defineHistogram, secondsSince } from '../metrics.js';

/** The routes every HTTP process of the platform may serve, as metric labels; the rest are `other`. */
const ROUTES: ReadonlySet<string> = new Set(['/', '/graphql', '/graphql/stream', '/healthz', '/readyz', '/metrics']);

/** A path's route, bounded: ids stay out (a log download's bundle id), unknown paths are `other`. */
export function httpRoute(path: string): string {
  if (ROUTES.has(path)) return path;
  if (path.startsWith('/logs/download/')) return '/logs/download';
  return 'other';
}

const requestDuration = defineHistogram<'method' | 'route' | 'status_code'>({
  name: 'fleetgraph_http_request_duration_seconds',
  help: 'HTTP requests served, from the request to the end of the response (or the client going away), by method, route and status code.',
  labelNames: ['method', 'route', 'status_code'],
});

/**
 * The middleware that measures every HTTP request of the process into
 * `fleetgraph_http_request_duration_seconds` (method, route, status code). The route is one of a
 * fixed set (`httpRoute`), so scans of random paths add no series.
 */
export function meterRequests(): RequestHandler {
  const histogram = requestDuration;
  return (req, res, next) => {
    const started = performance.now();
    // Read now: routers mounted on a path change req.path while they run.
    const route = httpRoute(req.path);
    const method = req.method === 'GET' || req.method === 'POST' ? req.method : 'other';
    res.once('close', () => {
      histogram.observe({ method, route, status_code: String(res.statusCode) }, secondsSince(started));
    });
    next();
  };
}
