import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/** A signing key of the test identity provider. */
export interface IdpKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** The public key as PEM (SPKI): what an attacker would try as an HMAC secret. */
  publicPem: string;
}

/**
 * A stand-in for an organisation's identity provider: its JSON Web Key Set served over node:http
 * on a loopback port (`jwksUrl`), keys generated with jose, and tokens signed with them.
 */
export interface TestIdentityProvider {
  /** Where the key set is served. */
  jwksUrl: string;
  /** The `iss` of its tokens. */
  issuer: string;
  /** The `aud` its tokens carry unless told otherwise. */
  audience: string;
  /** The keys it publishes, oldest first. */
  readonly keys: readonly IdpKey[];
  /** How many times the key set was fetched. */
  readonly fetches: number;
  /** Makes a key (RS256 unless told) and publishes it beside the others. */
  addKey(alg?: IdpKey['alg']): Promise<IdpKey>;
  /** Stops publishing a key. */
  removeKey(kid: string): void;
  /**
   * A token of exactly `payload` (no claim added), signed with `key` (the newest unless told),
   * its header naming the key's `kid` unless `kid` says otherwise.
   */
  sign(payload: JWTPayload, options?: { key?: IdpKey; kid?: string }): Promise<string>;
  /** Claims of a valid token of this provider: issuer, audience, `iat` now and `exp` in `seconds`. */
  standardClaims(seconds?: number): JWTPayload;
  close(): Promise<void>;
}

/** Starts a test identity provider with one RS256 key. */
export async function startTestIdentityProvider(
  options: { issuer?: string; audience?: string } = {},
): Promise<TestIdentityProvider> {
  const keys: IdpKey[] = [];
  let fetches = 0;
  let counter = 0;
  const server = http.createServer((request, response) => {
    if (request.url !== '/.well-known/jwks.json') {
      response.writeHead(404).end();
      return;
    }
    fetches++;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = options.issuer ?? `${origin}/`;
  const audience = options.audience ?? 'fleetgraph';

  const idp: TestIdentityProvider = {
    jwksUrl: `${origin}/.well-known/jwks.json`,
    issuer,
    audience,
    keys,
    get fetches() {
      return fetches;
    },
    async addKey(alg = 'RS256') {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      const kid = `key-${++counter}`;
      const key: IdpKey = {
        kid,
        alg,
        privateKey,
        publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
        publicPem: await exportSPKI(publicKey),
      };
      keys.push(key);
      return key;
    },
    removeKey(kid) {
      const index = keys.findIndex((k) => k.kid === kid);
      if (index >= 0) keys.splice(index, 1);
    },
    async sign(payload, signOptions = {}) {
      const key = signOptions.key ?? keys.at(-1);
      if (!key) throw new Error('the identity provider has no key');
      return new SignJWT(payload)
        .setProtectedHeader({ alg: key.alg, kid: signOptions.kid ?? key.kid, typ: 'JWT' })
        .sign(key.privateKey);
    },
    standardClaims(seconds = 600) {
      const now = Math.floor(Date.now() / 1000);
      return { iss: issuer, aud: audience, iat: now, exp: now + seconds };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  await idp.addKey();
  return idp;
}
