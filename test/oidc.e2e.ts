import { startTestIdentityProvider, type TestIdentityProvider } from '@fleetgraph/kit/testing';
import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { seed, startPlatform, type Platform } from './src/index.js';

/**
 * Sign-in with the organisation's identity provider through the real gateway process: a JWKS
 * served by a test identity provider on a loopback port (keys made with jose), the gateway
 * configured with AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE and a claim mapping (the tenant in a
 * namespaced claim, the project roles as a list of groups), beside the HS256 development secret.
 */
const TENANT_CLAIM = 'https://fleet.example.com/tenant';
const QUERY = `query ($p: ID!) { clusterProfiles(projectId: $p) { nodes { id name } } }`;

describe('sign-in with the identity provider', () => {
  let idp: TestIdentityProvider;
  let platform: Platform;
  const tenant = seed.tenant();
  const project = seed.project();

  beforeAll(async () => {
    idp = await startTestIdentityProvider({ audience: 'fleetgraph-api' });
    platform = await startPlatform({
      env: {
        AUTH_JWKS_URL: idp.jwksUrl,
        AUTH_ISSUER: idp.issuer,
        AUTH_AUDIENCE: `another-api, ${idp.audience}`,
        AUTH_CLAIM_TENANT: TENANT_CLAIM,
        AUTH_CLAIM_PROJECTS: 'groups',
        // A rotated key is taken one second after the last fetch (30 s by default).
        AUTH_JWKS_COOLDOWN: '1s',
        RATE_LIMIT_PER_MINUTE: '0',
        RATE_LIMIT_ANONYMOUS_PER_MINUTE: '0',
      },
    });
  });

  afterAll(async () => {
    await platform?.stop();
    await idp?.close();
  });

  /** The claims of a user of the provider: its groups carry the project roles. */
  const user = (extra: JWTPayload = {}): JWTPayload => ({
    ...idp.standardClaims(600),
    sub: 'ada@example.com',
    [TENANT_CLAIM]: tenant,
    groups: ['everyone', `${project}:editor`],
    ...extra,
  });

  const connectWs = (token: string) =>
    new Promise<{ acknowledged: boolean; code?: number; reason?: string }>((resolve, reject) => {
      const socket = new WebSocket(platform.gatewayUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
      socket.on('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })),
      );
      socket.on('message', (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type !== 'connection_ack') return;
        socket.close(1000);
        resolve({ acknowledged: true });
      });
      socket.on('close', (code, reason) => resolve({ acknowledged: false, code, reason: String(reason) }));
      socket.on('error', reject);
    });

  const sseStatus = async (token: string) => {
    const controller = new AbortController();
    const response = await fetch(new URL('/graphql/stream', platform.gatewayUrl), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({
        query: 'subscription ($id: ID!) { clusterEvents(clusterId: $id) { cursor } }',
        variables: { id: 'c1' },
      }),
      signal: controller.signal,
    });
    controller.abort();
    return response.status;
  };

  it("should accept the provider's token over HTTP, graphql-ws and SSE, as the user its claims map to", async () => {
    const token = await idp.sign(user());
    const created = await platform.graphql(
      `mutation ($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id name } userErrors { code } } }`,
      { input: seed.profileInput(project, { name: 'signed-in' }) },
      token,
    );
    expect([created.status, created.errors, created.data!.createClusterProfile.userErrors]).toEqual([
      200,
      undefined,
      [],
    ]);
    expect((await platform.graphql(QUERY, { p: project }, token)).data!.clusterProfiles.nodes).toEqual([
      created.data!.createClusterProfile.profile,
    ]);
    expect(await connectWs(token)).toEqual({ acknowledged: true });
    expect(await sseStatus(token)).toBe(200);
    // The groups give no role elsewhere, and a viewer's group cannot write.
    const reader = await idp.sign(user({ groups: [`${project}:viewer`] }));
    const refused = await platform.graphql(
      `mutation ($input: CreateClusterProfileInput!) { createClusterProfile(input: $input) { profile { id } } }`,
      { input: seed.profileInput(project, { name: 'not-allowed' }) },
      reader,
    );
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('should accept the HS256 development tokens beside it', async () => {
    const token = await platform.token(seed.user(tenant, { [project]: 'viewer' }));
    expect((await platform.graphql(QUERY, { p: project }, token)).status).toBe(200);
  });

  it('should refuse a wrong issuer, audience or algorithm, an expired token and an unknown kid, on every transport', async () => {
    const [key] = idp.keys;
    const t = Math.floor(Date.now() / 1000);
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const hostile: [string, string][] = [
      ['another issuer', await idp.sign(user({ iss: 'https://evil.example.com/' }))],
      ['another audience', await idp.sign(user({ aud: 'another-app' }))],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT', kid: key!.kid })}.${b64(user())}.`],
      [
        'HS256 signed with the public key',
        await new SignJWT(user())
          .setProtectedHeader({ alg: 'HS256', kid: key!.kid })
          .sign(new TextEncoder().encode(key!.publicPem)),
      ],
      ['expired', await idp.sign(user({ iat: t - 600, exp: t - 60 }))],
      ['an unknown kid', await idp.sign(user(), { kid: 'not-published' })],
      ['without its tenant claim', await idp.sign(user({ [TENANT_CLAIM]: undefined }))],
      ['without exp', await idp.sign(user({ exp: undefined }))],
    ];
    for (const [what, token] of hostile) {
      const response = await platform.graphql(QUERY, { p: project }, token);
      expect([what, response.status, response.errors?.[0]?.extensions?.code, response.data ?? null]).toEqual([
        what,
        401,
        'UNAUTHENTICATED',
        null,
      ]);
      const ws = await connectWs(token);
      expect([what, ws.acknowledged, ws.code]).toEqual([what, false, 4403]);
      expect([what, await sseStatus(token)]).toEqual([what, 401]);
    }
  });

  it('should accept a key the provider starts using, without a restart', async () => {
    const pid = platform.services.get('gateway')!.child.pid;
    expect((await platform.graphql(QUERY, { p: project }, await idp.sign(user()))).status).toBe(200);
    const rotated = await idp.addKey('ES256');
    const token = await idp.sign(user(), { key: rotated });
    // Once the cooldown since the last fetch has passed, the unknown kid makes the gateway fetch the keys again.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const response = await platform.graphql(QUERY, { p: project }, token);
    expect([response.status, response.errors]).toEqual([200, undefined]);
    expect(await connectWs(await idp.sign(user({ sub: 'grace@example.com' }), { key: rotated }))).toEqual({
      acknowledged: true,
    });
    expect(platform.services.get('gateway')!.child.pid).toBe(pid);
  });
});
