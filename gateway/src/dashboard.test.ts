import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, DEV_JWT_SECRET, signBearer } from '@fleetgraph/kit/core';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseOrigins } from './cors.js';
import { mountDashboard } from './dashboard.js';
import { ids, startWidgetsPlatform, type WidgetsPlatform } from './subscriptions/widgets.fixture.js';

const ALLOWED = 'https://ops.example.com';
const INDEX = '<!doctype html><title>dashboard</title><script type="module" src="/assets/app-1a2b.js"></script>';

/** Whether a WebSocket upgrade with these headers opens (its status when refused). */
function upgrade(url: string, headers: Record<string, string>): Promise<'open' | number> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, 'graphql-transport-ws', { headers });
    socket.on('open', () => {
      socket.close();
      resolve('open');
    });
    socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
    socket.on('error', () => {});
  });
}

describe('the dashboard and CORS at the gateway', () => {
  let platform: WidgetsPlatform;
  let dir: string;
  let base: string;
  let token: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleetgraph-dashboard-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), INDEX);
    await writeFile(join(dir, 'assets', 'app-1a2b.js'), 'console.log("dashboard")');
    platform = await startWidgetsPlatform({}, { corsOrigins: [ALLOWED], dashboard: { dir } });
    base = platform.gateway.url.replace(/\/graphql$/, '');
    token = await signBearer({ sub: 'u1', tenantId: ids.tenant(), projects: {} }, DEV_JWT_SECRET, '1h');
  });

  afterAll(async () => {
    await platform?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('should serve the dashboard at / and at client routes, never cached, with hashed assets cached for good', async () => {
    for (const path of ['/', '/clusters/cls_1', '/profiles']) {
      const response = await fetch(`${base}${path}`, { headers: { accept: 'text/html' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await response.text()).toBe(INDEX);
    }
    const asset = await fetch(`${base}/assets/app-1a2b.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(`${base}/assets/gone.js`)).status).toBe(404);
    expect(await (await fetch(`${base}/dashboard/config.json`)).json()).toEqual({ oidc: null });
  });

  it("should not shadow the gateway's own paths", async () => {
    const html = { accept: 'text/html' };
    expect(await (await fetch(`${base}/healthz`, { headers: html })).json()).toEqual({ status: 'ok' });
    expect((await fetch(`${base}/metrics`, { headers: html })).headers.get('content-type')).toContain('text/plain');
    // The development explorer still answers GET /graphql for a browser.
    expect(await (await fetch(`${base}/graphql`, { headers: html })).text()).not.toBe(INDEX);
    expect((await fetch(`${base}/logs/download/x`, { headers: html })).status).toBe(404);
    // Not a page: JSON clients get no HTML for unknown paths.
    expect((await fetch(`${base}/nothing`, { headers: { accept: 'application/json' } })).status).toBe(404);
  });

  it('should answer CORS for the listed origins only, on HTTP and SSE', async () => {
    const preflight = await fetch(`${base}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: ALLOWED,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');

    const query = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { origin: ALLOWED, 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(query.status).toBe(200);
    expect(query.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(query.headers.get('vary')).toContain('Origin');

    const stream = await fetch(`${base}/graphql/stream`, {
      method: 'OPTIONS',
      headers: { origin: ALLOWED, 'access-control-request-method': 'POST' },
    });
    expect(stream.headers.get('access-control-allow-origin')).toBe(ALLOWED);

    for (const origin of ['https://evil.example.com', 'null', `${ALLOWED}.evil.com`]) {
      const refused = await fetch(`${base}/graphql`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('should open graphql-ws sockets without Origin, from the same origin and from listed origins only', async () => {
    const { host } = new URL(base);
    expect(await upgrade(platform.wsUrl, {})).toBe('open');
    expect(await upgrade(platform.wsUrl, { origin: `http://${host}` })).toBe('open');
    expect(await upgrade(platform.wsUrl, { origin: ALLOWED })).toBe('open');
    expect(await upgrade(platform.wsUrl, { origin: 'https://evil.example.com' })).toBe(403);
    expect(await upgrade(platform.wsUrl, { origin: `http://${host}.evil.com` })).toBe(403);
  });

  it('should read CORS_ORIGINS as origins, refusing paths and wildcards', () => {
    expect(parseOrigins(' https://a.example.com, http://localhost:5173 ,')).toEqual([
      'https://a.example.com',
      'http://localhost:5173',
    ]);
    expect(parseOrigins(undefined)).toEqual([]);
    expect(() => parseOrigins('https://a.example.com/app')).toThrow(/not an origin/);
    expect(() => parseOrigins('*')).toThrow(/not an origin/);
  });
});

describe("the dashboard's content security policy with OIDC sign-in", () => {
  it("should let the page reach the provider's token endpoint, read from its discovery document, even on another origin", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleetgraph-dashboard-oidc-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), INDEX);
    // The provider: its discovery document first fails, then names a token endpoint elsewhere.
    let asked = 0;
    const provider = http.createServer((req, res) => {
      asked++;
      if (req.url !== '/pool/.well-known/openid-configuration' || asked === 1) return void res.writeHead(503).end();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: 'x', token_endpoint: 'https://login.example.net/oauth2/token' }));
    });
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/pool`;
    const app = express();
    mountDashboard(
      app,
      { dir, oidc: { issuer, clientId: 'dash' }, discoveryRetryMs: 100 },
      createLogger('t', 'silent'),
    );
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const page = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const policy = async () =>
      (await fetch(page, { headers: { accept: 'text/html' } })).headers.get('content-security-policy') ?? '';
    try {
      for (let i = 0; i < 50 && !(await policy()).includes('https://login.example.net'); i++)
        await new Promise((resolve) => setTimeout(resolve, 100));
      const connect = /connect-src ([^;]+)/.exec(await policy())![1]!.split(' ');
      expect(connect).toEqual(["'self'", 'ws:', 'wss:', new URL(issuer).origin, 'https://login.example.net']);
      expect(asked).toBeGreaterThanOrEqual(2);
    } finally {
      server.close();
      provider.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
