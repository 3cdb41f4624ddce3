import http from 'node:http';
import https from 'node:https';
import type { Logger } from '@fleetgraph/kit/core';
import type { Express } from 'express';

/** The path prefix of log bundle downloads, served by the logs service (services/logs/README.md). */
export const LOGS_DOWNLOAD_PATH = '/logs/download/';

/** Response headers passed on to the client; the rest (hop-by-hop, server details) are not. */
const PASSED_HEADERS = [
  'content-type',
  'content-length',
  'content-disposition',
  'cache-control',
  'referrer-policy',
  'x-content-type-options',
  'last-modified',
  'etag',
];

/**
 * Where the gateway sends downloads: LOGS_HTTP_URL when set, else the origin of the logs
 * subgraph's URL (LOGS_URL or the supergraph's), which serves downloads beside /graphql.
 */
export function logsHttpUrl(env: NodeJS.ProcessEnv, logsSubgraphUrl: string | undefined): string | undefined {
  const url = env.LOGS_HTTP_URL || logsSubgraphUrl;
  return url ? new URL(url).origin : undefined;
}

/** A bundle id as the logs service makes them (`lb_<ulid>`), and an archive's file name (logs' archiveFileName). */
const BUNDLE_ID = /^[A-Za-z0-9_-]{1,128}$/;
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$/;

/**
 * One path segment, decoded once; undefined unless it is what the pattern allows (no dot segment,
 * separator or escape).
 */
function segment(raw: string, pattern: RegExp): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  return pattern.test(decoded) ? decoded : undefined;
}

/**
 * The upstream path and query of a download request, or undefined when the request is not for the
 * one route the proxy exists for: `/logs/download/<bundleId>/<fileName>` with at most a `token`
 * parameter, read from the raw request target (before any decoding or dot-segment resolution,
 * case-sensitively, origin-form only) and rebuilt from its checked parts, so that nothing else of
 * the logs service (`/readyz`, `/graphql`, ...) is reachable through the gateway: not by `..`, nor
 * `%2e%2e`, `%2f`, backslashes, double encoding, another letter case, or an absolute-form target.
 */
export function downloadPath(requestTarget: string): string | undefined {
  const query = requestTarget.indexOf('?');
  const path = query === -1 ? requestTarget : requestTarget.slice(0, query);
  if (!path.startsWith(LOGS_DOWNLOAD_PATH)) return undefined;
  const parts = path.slice(LOGS_DOWNLOAD_PATH.length).split('/');
  if (parts.length !== 2) return undefined;
  const bundleId = segment(parts[0]!, BUNDLE_ID);
  const fileName = segment(parts[1]!, FILE_NAME);
  if (bundleId === undefined || fileName === undefined) return undefined;
  const tokens = new URLSearchParams(query === -1 ? '' : requestTarget.slice(query + 1)).getAll('token');
  if (tokens.length > 1) return undefined;
  const search = tokens.length === 1 ? `?${new URLSearchParams({ token: tokens[0]! })}` : '';
  return `${LOGS_DOWNLOAD_PATH}${encodeURIComponent(bundleId)}/${encodeURIComponent(fileName)}${search}`;
}

/**
 * Proxies `GET /logs/download/<bundleId>/<fileName>?token=<jwt>` to the logs service as a stream,
 * without buffering: the archive's bytes go from the upstream response to the client as they come,
 * with backpressure both ways. Only that route is forwarded (see downloadPath): any other path
 * under `/logs/download/` is answered 404 here, without contacting the logs service. The download
 * link's token is the credential: no bearer token is needed or forwarded. The logs service decides
 * 200, 403 or 404; an unreachable one is 502.
 */
export function mountDownloadProxy(app: Express, target: string | undefined, log: Logger): void {
  app.get(`${LOGS_DOWNLOAD_PATH}*path`, (req, res) => {
    const path = downloadPath(req.originalUrl);
    if (!target || !path) {
      res.status(404).json({ error: target ? 'no such download' : 'log downloads are not served here' });
      return;
    }
    // `target` is an origin and `path` starts with "/": the request stays on the logs service.
    const url = new URL(path, target);
    const client = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = { accept: req.header('accept') ?? '*/*' };
    const requestId = req.header('x-request-id');
    if (requestId) headers['x-request-id'] = requestId;
    const upstream = client.request(url, { method: req.method, headers }, (response) => {
      res.status(response.statusCode ?? 502);
      for (const name of PASSED_HEADERS) {
        const value = response.headers[name];
        if (value !== undefined) res.setHeader(name, value);
      }
      response.pipe(res);
      response.on('error', () => res.destroy());
    });
    upstream.on('error', (error) => {
      log.warn({ err: error }, 'log download proxy: the logs service is unreachable');
      if (!res.headersSent) res.status(502).json({ error: 'the logs service is unreachable' });
      else res.destroy();
    });
    // A client that goes away stops the upstream transfer too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.end();
  });
}
