import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@fleetgraph/kit/core';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadPath, logsHttpUrl, mountDownloadProxy } from './download-proxy.js';

const log = createLogger('download-proxy-test', 'silent');

/** A GET with this exact request target: no client-side normalisation of `..`, escapes or backslashes, as fetch would do. */
function rawGet(url: string, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const request = http.request({ host: hostname, port, method: 'GET', path: target }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

async function listen(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
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
        res
          .writeHead(403, { 'content-type': 'application/json', 'x-upstream-only': 'yes' })
          .end('{"error":"the download link is not valid"}');
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/zip',
        'content-disposition': 'attachment; filename="a.zip"',
        'x-internal': 'secret',
      });
      // Streamed in pieces, as an archive is.
      let n = 0;
      const timer = setInterval(() => {
        if (++n <= 5) res.write(Buffer.alloc(1024, n));
        else {
          clearInterval(timer);
          res.end();
        }
      }, 5);
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
    const response = await fetch(`${gateway.url}/logs/download/lb_1/a.zip?token=good`, {
      headers: { authorization: 'Bearer client-token' },
    });
    const body = Buffer.from(await response.arrayBuffer());
    expect([
      response.status,
      response.headers.get('content-type'),
      response.headers.get('content-disposition'),
      response.headers.get('x-internal'),
    ]).toEqual([200, 'application/zip', 'attachment; filename="a.zip"', null]);
    expect(body.length).toBe(5 * 1024);
    expect(seen.at(-1)).toEqual({ url: '/logs/download/lb_1/a.zip?token=good', authorization: undefined });
  });

  it("should pass the logs service's refusal on", async () => {
    const response = await fetch(`${gateway.url}/logs/download/lb_1/a.zip?token=bad`);
    expect([response.status, await response.json(), response.headers.get('x-upstream-only')]).toEqual([
      403,
      { error: 'the download link is not valid' },
      null,
    ]);
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

  describe('should forward only /logs/download/<bundleId>/<fileName>, answering anything else 404 without contacting the logs service', () => {
    it.each([
      '/logs/download/../../readyz',
      '/logs/download/../readyz',
      '/logs/download/lb_1/../../readyz',
      '/logs/download/lb_1/a.zip/../../../readyz?token=good',
      '/logs/download/%2e%2e/%2e%2e/readyz',
      '/logs/download/%2E%2E/%2E%2E/graphql',
      '/logs/download/.%2e/.%2e/readyz',
      '/logs/download/..%2f..%2freadyz',
      '/logs/download/lb_1/..%2F..%2F..%2Freadyz?token=good',
      '/logs/download/..%5c..%5creadyz',
      '/logs/download/..\\..\\readyz',
      '/logs/download/lb_1\\..\\..\\..\\readyz',
      '/logs/download/%252e%252e/%252e%252e/readyz',
      '/logs/download/lb_1/%252e%252e%252f%252e%252e%252freadyz?token=good',
      '/logs/download/%25252e%25252e/readyz',
      '/Logs/Download/../../readyz',
      '/LOGS/DOWNLOAD/lb_1/a.zip?token=good',
      '/logs/download/lb_1',
      '/logs/download/lb_1/',
      '/logs/download//a.zip?token=good',
      '/logs/download/lb_1/a.zip/',
      '/logs/download/lb_1/a.zip/extra?token=good',
      '/logs/download/lb_1/..?token=good',
      '/logs/download/lb_1/.?token=good',
      '/logs/download/./a.zip?token=good',
      '/logs/download/lb_1/.hidden?token=good',
      '/logs/download/lb_1/a.zip%00?token=good',
      '/logs/download/lb_1/a%2fb.zip?token=good',
      '/logs/download/lb%2f1/a.zip?token=good',
      '/logs/download/lb_1/a.zip;/../../readyz?token=good',
      '/logs/download/lb_1/a.zip?token=good&token=other',
    ])('%s', async (target) => {
      const before = seen.length;
      const response = await rawGet(gateway.url, target);
      expect([response.status, seen.slice(before)]).toEqual([404, []]);
    });

    it('a malformed escape (Express answers 400 before any route)', async () => {
      const before = seen.length;
      const response = await rawGet(gateway.url, '/logs/download/lb_1/a%zz.zip?token=good');
      expect([[400, 404].includes(response.status), seen.slice(before)]).toEqual([true, []]);
    });

    it('an absolute-form request target, which would name another host', async () => {
      const contacted: string[] = [];
      const internal = await listen((req, res) => {
        contacted.push(req.url ?? '');
        res.writeHead(200).end('internal');
      });
      try {
        const before = seen.length;
        const response = await rawGet(gateway.url, `${internal.url}/logs/download/lb_1/a.zip?token=good`);
        expect([response.status, contacted, seen.slice(before)]).toEqual([404, [], []]);
      } finally {
        await internal.close();
      }
    });
  });

  it('should forward a link normalised: its path segments decoded once and re-encoded, and its token alone', async () => {
    const response = await rawGet(
      gateway.url,
      '/logs/download/lb_1/web%2Dlogs%2E20260101.zip?token=good&x=../../readyz&y=1',
    );
    expect([response.status, seen.at(-1)?.url]).toEqual([200, '/logs/download/lb_1/web-logs.20260101.zip?token=good']);
    expect(downloadPath('/logs/download/lb_01JXYZ/my-cluster-logs-20260101-000000.zip?token=a.b-c_d')).toBe(
      '/logs/download/lb_01JXYZ/my-cluster-logs-20260101-000000.zip?token=a.b-c_d',
    );
    expect(downloadPath('/logs/download/lb_1/a.zip')).toBe('/logs/download/lb_1/a.zip');
    expect(downloadPath('/readyz')).toBeUndefined();
  });

  it('should prefer LOGS_HTTP_URL and reduce a URL to its origin', () => {
    expect(logsHttpUrl({ LOGS_HTTP_URL: 'http://logs:4005/x' }, 'http://127.0.0.1:4005/graphql')).toBe(
      'http://logs:4005',
    );
    expect(logsHttpUrl({}, 'http://127.0.0.1:4005/graphql')).toBe('http://127.0.0.1:4005');
    expect(logsHttpUrl({}, undefined)).toBeUndefined();
  });
});
