import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';

/**
 * Which web origins may call the gateway from a browser: its own (same-origin) always, and the
 * origins of `CORS_ORIGINS` (a dashboard hosted elsewhere). Requests without an `Origin` header are
 * not a browser's cross-origin requests (curl, services, the typed client on Node) and are left as
 * they are: authentication, not the origin, decides what they may do.
 */
export interface OriginPolicy {
  /** The origins allowed besides the gateway's own, normalised (`scheme://host[:port]`). */
  readonly origins: ReadonlySet<string>;
  /** Whether a WebSocket upgrade may proceed: no Origin, the same origin, or one of the list. */
  allowsUpgrade(request: IncomingMessage): boolean;
  /** CORS for HTTP and SSE: answers preflights and marks the answers to allowed origins. */
  readonly http: RequestHandler;
}

/** Request headers a browser client sends cross-origin (Apollo's CSRF headers included). */
const ALLOWED_HEADERS =
  'authorization, content-type, accept, x-request-id, apollo-require-preflight, x-apollo-operation-name, traceparent';
/** Response headers a cross-origin client may read. */
const EXPOSED_HEADERS = 'x-request-id, retry-after';

/**
 * Parses `CORS_ORIGINS`: origins separated by commas (`https://ops.example.com,http://localhost:5173`).
 * @throws Error naming an entry that is not an origin (a path, a wildcard, no scheme)
 */
export function parseOrigins(value: string | undefined): string[] {
  const origins: string[] = [];
  for (const entry of (value ?? '').split(',')) {
    const trimmed = entry.trim();
    if (!trimmed) continue;
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw new Error(`"${trimmed}" is not an origin (scheme://host[:port])`);
    }
    if (!['http:', 'https:'].includes(url.protocol) || url.origin !== trimmed.replace(/\/$/, ''))
      throw new Error(`"${trimmed}" is not an origin (scheme://host[:port], without a path)`);
    origins.push(url.origin);
  }
  return origins;
}

/** The origin's `host[:port]`, or undefined when it is not a URL (`null`, garbage). */
function hostOf(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

/** Creates the origin policy of `origins` (already parsed by parseOrigins). */
export function createOriginPolicy(origins: readonly string[] = []): OriginPolicy {
  const allowed = new Set(origins);
  const crossOriginAllowed = (origin: string) => allowed.has(origin);
  return {
    origins: allowed,
    allowsUpgrade(request) {
      const origin = request.headers.origin;
      // Not a browser: nothing to check (authentication decides).
      if (origin === undefined) return true;
      if (crossOriginAllowed(origin)) return true;
      // The same origin: the page the gateway served (its Host as the browser addressed it).
      const host = request.headers.host;
      return host !== undefined && hostOf(origin) === host.toLowerCase();
    },
    http(req, res, next) {
      const origin = req.header('origin');
      if (origin !== undefined && crossOriginAllowed(origin)) {
        res.setHeader('access-control-allow-origin', origin);
        res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
        res.append('vary', 'Origin');
        if (req.method === 'OPTIONS') {
          res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
          res.setHeader('access-control-allow-headers', ALLOWED_HEADERS);
          res.setHeader('access-control-max-age', '600');
          res.status(204).end();
          return;
        }
      } else if (origin !== undefined) {
        // Answers differ by Origin: caches must not hand one origin's answer to another.
        res.append('vary', 'Origin');
        // A preflight from an origin not listed gets no CORS headers: the browser refuses the call.
        if (req.method === 'OPTIONS' && req.header('access-control-request-method')) {
          res.status(204).end();
          return;
        }
      }
      next();
    },
  };
}
