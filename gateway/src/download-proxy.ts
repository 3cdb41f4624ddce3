import http from 'node:http';
import https from 'node:https';
import type { Logger } from '@fleetgraph/kit';
import type { Express } from 'express';

/** The path prefix of log bundle downloads, served by the logs service (services/logs/README.md). */
export const LOGS_DOWNLOAD_PATH = '/logs/download/';

/** Response headers passed on to the client; the rest (hop-by-hop, server details) are not. */
const PASSED_HEADERS = ['content-type', 'content-length', 'content-disposition', 'cache-control', 'referrer-policy', 'x-content-type-options', 'last-modified', 'etag'];

/**
 * Where the gateway sends downloads: LOGS_HTTP_URL when set, else the origin of the logs
 * subgraph's URL (LOGS_URL or the supergraph's), which serves downloads beside /graphql.
 */
export function logsHttpUrl(env: NodeJS.ProcessEnv, logsSubgraphUrl: string | undefined): string | undefined {
  const url = env.LOGS_HTTP_URL || logsSubgraphUrl;
  return url ? new URL(url).origin : undefined;
}

/**
 * Proxies `GET /logs/download/*` to the logs service as a stream, without buffering: the
 * archive's bytes go from the upstream response to the client as they come, with backpressure
 * both ways. The download link's token is the credential: no bearer token is needed or
 * forwarded. The logs service decides 200, 403 or 404; an unreachable one is 502.
 */
export function mountDownloadProxy(app: Express, target: string | undefined, log: Logger): void {
  app.get(`${LOGS_DOWNLOAD_PATH}*path`, (req, res) => {
    if (!target) {
      res.status(404).json({ error: 'log downloads are not served here' });
      return;
    }
    const url = new URL(req.originalUrl, target);
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
