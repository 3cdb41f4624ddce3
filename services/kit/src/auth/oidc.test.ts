import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_JWT_SECRET } from '../env.js';
import { startTestIdentityProvider, type TestIdentityProvider } from '../testing/jwks.js';
import { signHs256 } from '../testing/tokens.js';
import { createJwtVerifier, createOidcVerifier, mapClaims, type OidcOptions } from './oidc.js';
import { createBearerVerifier, signBearer, type TokenVerifier } from './tokens.js';

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const fleetClaims = { sub: 'u1', tenantId: 't1', projects: { p1: 'editor' as const } };

/** Why a verifier refuses a token: the AuthenticationError's reason and message, or 'accepted'. */
const outcome = async (verify: TokenVerifier, token: string) =>
  verify(token).then(
    () => 'accepted',
    (error: Error & { reason?: string }) => `${error.name} ${error.reason}: ${error.message}`,
  );

describe('tokens of the identity provider (OIDC)', () => {
  let idp: TestIdentityProvider;
  let options: OidcOptions;

  beforeAll(async () => {
    idp = await startTestIdentityProvider();
    options = { jwksUrl: idp.jwksUrl, issuer: idp.issuer, audience: idp.audience, cooldownMs: 300 };
  });

  afterAll(async () => {
    await idp?.close();
  });

  it('should accept a token of the issuer and audience, read with the default claim names', async () => {
    const verify = createOidcVerifier(options);
    const claims = idp.standardClaims(600);
    const verified = await verify(await idp.sign({ ...claims, ...fleetClaims, tenantAdmin: true }));
    expect(verified.identity.claims).toEqual({ ...fleetClaims, tenantAdmin: true });
    expect(verified.expiresAt).toEqual(new Date(claims.exp! * 1000));
  });

  it('should accept one audience among several, and an ES256 key', async () => {
    const es = await idp.addKey('ES256');
    const verify = createOidcVerifier({ ...options, audience: ['other-api', idp.audience] });
    expect(await outcome(verify, await idp.sign({ ...idp.standardClaims(), ...fleetClaims }, { key: es }))).toBe(
      'accepted',
    );
    idp.removeKey(es.kid);
  });

  it('should refuse a wrong issuer, audience or algorithm, an expired token, an unknown kid and bad claims', async () => {
    const verify = createOidcVerifier(options);
    const [key] = idp.keys;
    const valid = { ...idp.standardClaims(), ...fleetClaims };
    const t = Math.floor(Date.now() / 1000);
    const header = { alg: 'none', typ: 'JWT', kid: key!.kid };
    const refusals: [string, string, string][] = [
      [
        'another issuer',
        await idp.sign({ ...valid, iss: 'https://evil.example.com/' }),
        'token issuer is not accepted',
      ],
      ['another audience', await idp.sign({ ...valid, aud: 'another-api' }), 'token audience is not accepted'],
      ['no audience', await idp.sign({ ...valid, aud: undefined }), 'token audience is not accepted'],
      ['alg none', `${base64url(header)}.${base64url(valid)}.`, 'token algorithm is not accepted'],
      [
        'HS256 with the public key as the secret',
        await new SignJWT(valid)
          .setProtectedHeader({ alg: 'HS256', kid: key!.kid })
          .sign(new TextEncoder().encode(key!.publicPem)),
        'token algorithm is not accepted',
      ],
      ['expired', await idp.sign({ ...valid, iat: t - 600, exp: t - 60 }), 'token expired'],
      ['without exp', await idp.sign({ ...valid, exp: undefined }), 'token has no expiry (exp)'],
      [
        'living longer than the maximum',
        await idp.sign({ ...valid, exp: t + 2 * 86_400 }),
        'token lifetime exceeds the maximum of 86400 s',
      ],
      [
        'an unknown kid',
        await idp.sign(valid, { kid: 'never-published' }),
        "no key of the identity provider matches the token's kid",
      ],
      ['without tenant', await idp.sign({ ...valid, tenantId: undefined }), 'token claims are invalid: tenantId: '],
      [
        'an API key subject',
        await idp.sign({ ...valid, sub: 'apikey:apk_1' }),
        'token subjects starting with apikey: are reserved for API keys',
      ],
    ];
    for (const [what, token, message] of refusals) {
      const said = await outcome(verify, token);
      expect(
        [
          what,
          said.startsWith(`AuthenticationError ${message === 'token expired' ? 'expired' : 'invalid'}: ${message}`),
        ],
        said,
      ).toEqual([what, true]);
    }
    // Signed with a key the provider never published, under a published kid.
    const impostor = await startTestIdentityProvider({ issuer: idp.issuer, audience: idp.audience });
    const forged = await impostor.sign(valid, { kid: key!.kid });
    await impostor.close();
    expect(await outcome(verify, forged)).toBe('AuthenticationError invalid: token is invalid');
  });

  it('should take a new key without a restart once the cooldown after the last fetch has passed', async () => {
    // A cooldown long enough for generating a key on a loaded machine (it failed at 500 ms in CI).
    const verify = createOidcVerifier({ ...options, cooldownMs: 3_000 });
    const payload = { ...idp.standardClaims(), ...fleetClaims };
    expect(await outcome(verify, await idp.sign(payload))).toBe('accepted');
    const fetched = idp.fetches;

    const rotated = await idp.addKey();
    // Within the cooldown, an unknown kid is refused without a fetch: a flood of made-up kids costs nothing.
    const token = await idp.sign(payload, { key: rotated });
    expect(await outcome(verify, token)).toMatch(/matches the token's kid$/);
    expect(idp.fetches).toBe(fetched);

    await new Promise((resolve) => setTimeout(resolve, 3_100));
    expect(await outcome(verify, token)).toBe('accepted');
    expect(idp.fetches).toBe(fetched + 1);
    // The retired key goes once the provider stops publishing it and the keys are fetched again.
    const retired = idp.keys[0]!;
    idp.removeKey(retired.kid);
    const fresh = createOidcVerifier(options);
    expect(await outcome(fresh, await idp.sign(payload, { key: retired }))).toMatch(/matches the token's kid$/);
    expect(await outcome(fresh, token)).toBe('accepted');
  });

  it('should tell a provider that cannot be reached from a bad token', async () => {
    const verify = createOidcVerifier({ ...options, jwksUrl: 'http://127.0.0.1:9/jwks.json', timeoutMs: 1_000 });
    expect(await outcome(verify, await idp.sign({ ...idp.standardClaims(), ...fleetClaims }))).toMatch(
      /^AuthenticationError unavailable: /,
    );
  });

  it('should read renamed, namespaced and nested claims, and roles as a list', () => {
    const payload: JWTPayload = {
      sub: 'ignored',
      email: 'ada@example.com',
      'https://fleet.example.com/tenant': 'acme',
      realm_access: { roles: ['web:viewer', 'web:ADMIN', 'ops:editor', 'offline_access', 'default-roles'] },
      admin: 'true',
    };
    expect(
      mapClaims(payload, {
        subject: 'email',
        tenant: 'https://fleet.example.com/tenant',
        tenantAdmin: 'admin',
        projects: 'realm_access.roles',
      }),
    ).toEqual({
      sub: 'ada@example.com',
      tenantId: 'acme',
      tenantAdmin: true,
      projects: { web: 'admin', ops: 'editor' },
    });
    expect(() => mapClaims({ sub: 'u', tenantId: 't', projects: { web: 'owner' } })).toThrow(/projects/);
    expect(() => mapClaims({ sub: 'u', tenantId: 't', tenantAdmin: 'yes' })).toThrow(/tenantAdmin/);
  });

  it('should tell HS256 development tokens and the provider’s apart by algorithm when both are configured', async () => {
    const both = createJwtVerifier({ hs256Secret: DEV_JWT_SECRET, oidc: options });
    const oidcOnly = createJwtVerifier({ oidc: options });
    const hs256Only = createJwtVerifier({ hs256Secret: DEV_JWT_SECRET });
    const development = await signBearer(fleetClaims, DEV_JWT_SECRET, '1h');
    const provider = await idp.sign({ ...idp.standardClaims(), ...fleetClaims });
    const publicKeySigned = await signHs256({ ...idp.standardClaims(), ...fleetClaims }, idp.keys[0]!.publicPem);

    expect(await outcome(both, development)).toBe('accepted');
    expect(await outcome(both, provider)).toBe('accepted');
    expect(await outcome(both, publicKeySigned)).toMatch(/^AuthenticationError invalid: /);
    expect(await outcome(oidcOnly, development)).toBe('AuthenticationError invalid: token algorithm is not accepted');
    expect(await outcome(oidcOnly, publicKeySigned)).toBe(
      'AuthenticationError invalid: token algorithm is not accepted',
    );
    expect(await outcome(hs256Only, provider)).toBe('AuthenticationError invalid: token algorithm is not accepted');
    expect(await outcome(both, 'not.a-token')).toBe('AuthenticationError invalid: token is invalid');

    // Behind the memory of verified tokens, as the gateway uses it.
    const remembering = createBearerVerifier(both);
    expect((await remembering(`Bearer ${provider}`)).identity.tenantId).toBe('t1');
    await expect(remembering(`Bearer ${publicKeySigned}`)).rejects.toMatchObject({ name: 'AuthenticationError' });
  });
});
