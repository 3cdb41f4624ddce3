import { hostileTokens, signHs256 } from '@fleetgraph/kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { seed, startPlatform, type Platform } from './src/index.js';

/**
 * Client bearer tokens through the real gateway process: over HTTP, graphql-ws and SSE, every
 * token that is not HS256 with the platform's secret, with `exp` within AUTH_MAX_TOKEN_LIFETIME
 * (set to 2 hours here, so that the gateway's setting is what decides), past its `nbf` and with
 * valid claims, is refused as UNAUTHENTICATED.
 */
const MAX_LIFETIME_S = 2 * 3600;
const QUERY = `query ($p: ID!) { clusterProfiles(projectId: $p) { nodes { id } } }`;

describe('bearer tokens at the gateway', () => {
  let platform: Platform;
  const tenant = seed.tenant();
  const project = seed.project();
  const claims = seed.user(tenant, { [project]: 'viewer' });
  let hostile: [string, string][];

  beforeAll(async () => {
    platform = await startPlatform({ env: { AUTH_MAX_TOKEN_LIFETIME: '2h' } });
    hostile = await hostileTokens(platform.env.AUTH_JWT_SECRET!, claims, MAX_LIFETIME_S);
    // Beyond the configured maximum, though within the default 24 hours.
    const t = Math.floor(Date.now() / 1000);
    hostile.push(['living 3 hours', await platform.token(claims, '3h')]);
    hostile.push([
      'without iat, expiring in 3 hours',
      await signHs256({ ...claims, exp: t + 3 * 3600 }, platform.env.AUTH_JWT_SECRET!),
    ]);
  });

  afterAll(async () => {
    await platform?.stop();
  });

  /** Opens a graphql-transport-ws socket, sends connection_init with the token, and tells how it ends. */
  const connectWs = (token: string) =>
    new Promise<{ acknowledged: boolean; code?: number; reason?: string }>((resolve, reject) => {
      const socket = new WebSocket(platform.gatewayUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error('neither acknowledged nor closed in 10 s'));
      }, 10_000);
      socket.on('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })),
      );
      socket.on('message', (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type !== 'connection_ack') return;
        clearTimeout(timer);
        socket.close(1000);
        resolve({ acknowledged: true });
      });
      socket.on('close', (code, reason) => {
        clearTimeout(timer);
        resolve({ acknowledged: false, code, reason: reason.toString() });
      });
      socket.on('error', reject);
    });

  const sse = (token: string) =>
    fetch(new URL('/graphql/stream', platform.gatewayUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'subscription ($id: ID!) { clusterEvents(clusterId: $id) { cursor } }',
        variables: { id: 'c1' },
      }),
    });

  it('should serve a valid token, up to the configured lifetime', async () => {
    for (const token of [await platform.token(claims, '1h'), await platform.token(claims, '2h')]) {
      const response = await platform.graphql(QUERY, { p: project }, token);
      expect([response.status, response.errors]).toEqual([200, undefined]);
      expect(await connectWs(token)).toEqual({ acknowledged: true });
    }
  });

  it('should answer every hostile token over HTTP with 401 UNAUTHENTICATED', async () => {
    expect(hostile.length).toBeGreaterThan(15);
    for (const [what, token] of hostile) {
      const response = await platform.graphql(QUERY, { p: project }, token);
      expect([what, response.status, response.errors?.[0]?.extensions?.code, response.data ?? null]).toEqual([
        what,
        401,
        'UNAUTHENTICATED',
        null,
      ]);
      // Twice: a refused token is not remembered as verified.
      expect([what, (await platform.graphql(QUERY, { p: project }, token)).status]).toEqual([what, 401]);
    }
  });

  it('should close a graphql-ws connection initialised with a hostile token with 4403', async () => {
    for (const [what, token] of hostile) {
      const ended = await connectWs(token);
      expect([what, ended.acknowledged, ended.code]).toEqual([what, false, 4403]);
      expect(ended.reason).toMatch(/^Forbidden: /);
    }
  });

  it('should answer an SSE subscription with a hostile token with 401 UNAUTHENTICATED', async () => {
    for (const [what, token] of hostile) {
      const response = await sse(token);
      const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
      expect([what, response.status, body.errors[0]?.extensions.code]).toEqual([what, 401, 'UNAUTHENTICATED']);
    }
  });
});
