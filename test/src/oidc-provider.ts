import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/**
 * A fake OpenID provider for browser tests of a public client's sign-in: the authorization code
 * flow with PKCE (RFC 7636, S256 only) as a real provider runs it, minus the login form (the user
 * is signed in already: `/authorize` sends the browser straight back with a code).
 *
 * - `GET /.well-known/openid-configuration`: the discovery document (CORS: any origin, as
 *   providers serve it);
 * - `GET /authorize`: checks `response_type=code`, the client id, its registered redirect URI,
 *   `code_challenge_method=S256`, a well-formed `code_challenge` and a `state`, records them, and
 *   redirects to the redirect URI with `code` and `state`;
 * - `POST /token` (form): `grant_type=authorization_code`, a code it issued, not used before and
 *   not expired, the same `redirect_uri` and `client_id`, and a `code_verifier` whose
 *   base64url(SHA-256) is the recorded challenge; answers CORS for the registered client's origin
 *   only; returns an access token (a JWT for `audience`, RFC 9068) and an ID token (for the
 *   client), both ES256, signed with the key of `/jwks`;
 * - `GET /jwks`: the public key.
 *
 * Anything else, or anything wrong, is a 400 (`{ error, error_description }`), recorded in
 * `refusals`, so that a test cannot pass by accident.
 */
export interface FakeOidcProvider {
  /** `http://127.0.0.1:<port>` (no trailing slash): the `iss` of its tokens. */
  issuer: string;
  origin: string;
  jwksUrl: string;
  /** The `aud` of its access tokens: the API's. */
  audience: string;
  /** Registers a public client: its id and its one redirect URI (whose origin may call `/token`). */
  registerClient(clientId: string, redirectUri: string): void;
  /** The claims of the signed-in user, put into every token beside iss, aud, iat, exp (`sub` among them). */
  user: JWTPayload;
  /** Each `/authorize` accepted. */
  readonly authorizations: readonly Authorization[];
  /** Each code exchanged at `/token`: the verifier matched its challenge (else it is in `refusals`). */
  readonly exchanges: readonly Exchange[];
  /** Each request refused, with why. */
  readonly refusals: readonly { path: string; error: string; description: string }[];
  close(): Promise<void>;
}

export interface Authorization {
  clientId: string;
  redirectUri: string;
  scope: string;
  state: string;
  codeChallenge: string;
  code: string;
}

export interface Exchange {
  code: string;
  codeChallenge: string;
  codeVerifier: string;
  /** The `Origin` the browser sent. */
  origin: string | undefined;
  accessToken: string;
  idToken: string;
}

interface PendingCode extends Authorization {
  used: boolean;
  expiresAt: number;
}

const CODE_LIFETIME_MS = 60_000;
const TOKEN_LIFETIME_S = 600;
const base64url = (bytes: Buffer) => bytes.toString('base64url');
/** RFC 7636: a verifier is 43 to 128 unreserved characters; an S256 challenge, 43 base64url characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

class Refusal extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

export async function startFakeOidcProvider(options: {
  audience: string;
  user?: JWTPayload;
}): Promise<FakeOidcProvider> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = 'fake-oidc-1';
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const clients = new Map<string, string>();
  const codes = new Map<string, PendingCode>();
  const authorizations: Authorization[] = [];
  const exchanges: Exchange[] = [];
  const refusals: { path: string; error: string; description: string }[] = [];

  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', origin);
    handle(request, response, url).catch((error: unknown) => {
      const refusal =
        error instanceof Refusal ? error : new Refusal('invalid_request', (error as Error).message ?? String(error));
      refusals.push({ path: url.pathname, error: refusal.error, description: refusal.description });
      if (response.headersSent) return void response.end();
      response.writeHead(400, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify({ error: refusal.error, error_description: refusal.description }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = origin;

  const sign = (payload: JWTPayload, typ: string) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid, typ }).sign(privateKey as CryptoKey);

  /** CORS for the origin of a registered client's redirect URI; none for any other origin. */
  const clientOrigin = (request: http.IncomingMessage) => {
    const from = request.headers.origin;
    return from && [...clients.values()].some((uri) => new URL(uri).origin === from) ? from : undefined;
  };

  async function handle(request: http.IncomingMessage, response: http.ServerResponse, url: URL) {
    const method = request.method ?? 'GET';
    if (url.pathname === '/.well-known/openid-configuration' && method === 'GET') {
      response.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
      response.end(
        JSON.stringify({
          issuer,
          authorization_endpoint: `${origin}/authorize`,
          token_endpoint: `${origin}/token`,
          jwks_uri: `${origin}/jwks`,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['none'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['ES256'],
          scopes_supported: ['openid', 'profile'],
        }),
      );
      return;
    }
    if (url.pathname === '/jwks' && method === 'GET') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys: [publicJwk] }));
      return;
    }
    if (url.pathname === '/authorize' && method === 'GET') return authorize(url.searchParams, response);
    if (url.pathname === '/token' && method === 'OPTIONS') {
      const allowed = clientOrigin(request);
      if (!allowed) throw new Refusal('invalid_request', `origin ${request.headers.origin} may not call /token`);
      response.writeHead(204, {
        'access-control-allow-origin': allowed,
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'content-type',
        vary: 'origin',
      });
      response.end();
      return;
    }
    if (url.pathname === '/token' && method === 'POST') return token(request, response);
    throw new Refusal('invalid_request', `${method} ${url.pathname} is not an endpoint of this provider`);
  }

  function authorize(params: URLSearchParams, response: http.ServerResponse) {
    const get = (name: string) => params.get(name) ?? '';
    if (get('response_type') !== 'code') throw new Refusal('unsupported_response_type', 'response_type must be code');
    const clientId = get('client_id');
    const registered = clients.get(clientId);
    if (!registered) throw new Refusal('unauthorized_client', `unknown client_id ${clientId}`);
    if (get('redirect_uri') !== registered)
      throw new Refusal('invalid_request', `redirect_uri ${get('redirect_uri')} is not registered for ${clientId}`);
    if (!get('scope').split(' ').includes('openid')) throw new Refusal('invalid_scope', 'scope must include openid');
    if (get('code_challenge_method') !== 'S256')
      throw new Refusal('invalid_request', 'code_challenge_method must be S256');
    if (!CHALLENGE.test(get('code_challenge')))
      throw new Refusal('invalid_request', 'code_challenge must be 43 base64url characters');
    if (!get('state')) throw new Refusal('invalid_request', 'state is required');
    const code = base64url(randomBytes(24));
    const authorization: Authorization = {
      clientId,
      redirectUri: registered,
      scope: get('scope'),
      state: get('state'),
      codeChallenge: get('code_challenge'),
      code,
    };
    authorizations.push(authorization);
    codes.set(code, { ...authorization, used: false, expiresAt: Date.now() + CODE_LIFETIME_MS });
    const back = new URL(registered);
    back.searchParams.set('code', code);
    back.searchParams.set('state', authorization.state);
    response.writeHead(302, { location: back.href, 'cache-control': 'no-store' });
    response.end();
  }

  async function token(request: http.IncomingMessage, response: http.ServerResponse) {
    const allowed = clientOrigin(request);
    if (request.headers.origin && !allowed)
      throw new Refusal('invalid_request', `origin ${request.headers.origin} may not call /token`);
    if (!(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded'))
      throw new Refusal('invalid_request', 'the body must be application/x-www-form-urlencoded');
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const get = (name: string) => form.get(name) ?? '';
    if (get('grant_type') !== 'authorization_code')
      throw new Refusal('unsupported_grant_type', 'grant_type must be authorization_code');
    const pending = codes.get(get('code'));
    if (!pending) throw new Refusal('invalid_grant', 'unknown code');
    // A code is good for one attempt, right or wrong (RFC 6749 4.1.2).
    const reused = pending.used;
    pending.used = true;
    if (reused) throw new Refusal('invalid_grant', 'the code was used already');
    if (pending.expiresAt < Date.now()) throw new Refusal('invalid_grant', 'the code expired');
    if (get('client_id') !== pending.clientId) throw new Refusal('invalid_grant', 'client_id differs from /authorize');
    if (get('redirect_uri') !== pending.redirectUri)
      throw new Refusal('invalid_grant', 'redirect_uri differs from /authorize');
    const verifier = get('code_verifier');
    if (!VERIFIER.test(verifier))
      throw new Refusal('invalid_request', 'code_verifier must be 43 to 128 unreserved characters');
    if (base64url(createHash('sha256').update(verifier, 'ascii').digest()) !== pending.codeChallenge)
      throw new Refusal('invalid_grant', 'code_verifier does not match the code_challenge');
    const now = Math.floor(Date.now() / 1000);
    const times = { iss: issuer, iat: now, exp: now + TOKEN_LIFETIME_S };
    const accessToken = await sign(
      {
        ...provider.user,
        ...times,
        aud: options.audience,
        client_id: pending.clientId,
        scope: pending.scope,
        jti: base64url(randomBytes(12)),
      },
      'at+jwt',
    );
    const idToken = await sign({ ...provider.user, ...times, aud: pending.clientId, azp: pending.clientId }, 'JWT');
    exchanges.push({
      code: pending.code,
      codeChallenge: pending.codeChallenge,
      codeVerifier: verifier,
      origin: request.headers.origin,
      accessToken,
      idToken,
    });
    response.writeHead(200, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      ...(allowed ? { 'access-control-allow-origin': allowed, vary: 'origin' } : {}),
    });
    response.end(
      JSON.stringify({
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: TOKEN_LIFETIME_S,
        id_token: idToken,
        scope: pending.scope,
      }),
    );
  }

  const provider: FakeOidcProvider = {
    issuer,
    origin,
    jwksUrl: `${origin}/jwks`,
    audience: options.audience,
    user: options.user ?? { sub: 'user@example.com' },
    registerClient(clientId, redirectUri) {
      clients.set(clientId, redirectUri);
    },
    authorizations,
    exchanges,
    refusals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return provider;
}
