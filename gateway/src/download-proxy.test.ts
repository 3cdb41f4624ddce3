import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@fleetgraph/kit';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logsHttpUrl, mountDownloadProxy } from './download-proxy.js';

const log = createLogger('download-proxy-test', 'silent');

async function listen(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('the log download proxy', () => {
  const seen: { url?: string; authorization?: string }[] = [];
  let upstream: Awaited<ReturnType<typeof listen>>;
  let gateway: Awaited<ReturnType<typeof listen>>;
  let unconfigured: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    upstream = await listen((req, res) => {
      seen.push({ url: req.url, authorization: req.headers.authorization });
      if (!req.url?.includes('token=good')) {
        res.writeHead(403, { 'content-type': 'application/json', 'x-upstream-only': 'yes' }).end('{"error":"the download link is not valid"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/zip', 'content-disposition': 'attachment; filename="a.zip"', 'x-internal': 'secret' });
      // Streamed in pieces, as an archive is.
      let n = 0;
      const timer = setInterval(() => (++n <= 5 ? res.write(Buffer.alloc(1024, n)) : (clearInterval(timer), res.end())), 5);
    });
    const app = express();
    mountDownloadProxy(app, logsHttpUrl({}, `${upstream.url}/graphql`), log);
    gateway = await listen(app);
    const bare = express();
    mountDownloadProxy(bare, undefined, log);
    unconfigured = await listen(bare);
  });
  afterAll(async () => {
    await Promise.all([upstream?.close(), gateway?.close(), unconfigured?.close()]);
  });

  it('should stream the archive with its headers, and nothing of the upstream server besides', async () => {
    const response = await fetch(`${gateway.url}/logs/download/lb_1/a.zip?token=good`, { headers: { authorization: 'Bearer client-token' } });
    const body = Buffer.from(await response.arrayBuffer());
    expect([response.status, response.headers.get('content-type'), response.headers.get('content-disposition'), response.headers.get('x-internal')]).toEqual([
      200,
      'application/zip',
      'attachment; filename="a.zip"',
      null,
    ]);
    expect(body.length).toBe(5 * 1024);
    expect(seen.at(-1)).toEqual({ url: '/logs/download/lb_1/a.zip?token=good', authorization: undefined });
  });

  it("should pass the logs service's refusal on", async () => {
    const response = await fetch(`${gateway.url}/logs/download/lb_1/a.zip?token=bad`);
    expect([response.status, await response.json(), response.headers.get('x-upstream-only')]).toEqual([403, { error: 'the download link is not valid' }, null]);
  });

  it('should answer 502 when the logs service is unreachable, and 404 when none is configured', async () => {
    const app = express();
    mountDownloadProxy(app, 'http://127.0.0.1:1', log);
    const broken = await listen(app);
    try {
      expect((await fetch(`${broken.url}/logs/download/x/y.zip?token=t`)).status).toBe(502);
    } finally {
      await broken.close();
    }
    expect((await fetch(`${unconfigured.url}/logs/download/x/y.zip?token=t`)).status).toBe(404);
  });

  it('should prefer LOGS_HTTP_URL and reduce a URL to its origin', () => {
    expect(logsHttpUrl({ LOGS_HTTP_URL: 'http://logs:4005/x' }, 'http://127.0.0.1:4005/graphql')).toBe('http://logs:4005');
    expect(logsHttpUrl({}, 'http://127.0.0.1:4005/graphql')).toBe('http://127.0.0.1:4005');
    expect(logsHttpUrl({}, undefined)).toBeUndefined();
  });
});
