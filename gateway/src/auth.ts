import {
  AuthenticationError,
  bearerToken,
  createBearerVerifier,
  createJwtVerifier,
  type OidcOptions,
  type VerifiedBearer,
} from '@fleetgraph/kit/core';
import { isApiKey, type ApiKeyVerifier } from './apikeys.js';

/** How clients may sign in at the gateway. */
export interface AuthenticatorOptions {
  /** The secret of HS256 development tokens (AUTH_JWT_SECRET); without it, HS256 tokens are refused. */
  jwtSecret?: string;
  /** The organisation's identity provider (AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE, claim mapping). */
  oidc?: OidcOptions;
  /** Longest lifetime of a client token, HS256 or OIDC (AUTH_MAX_TOKEN_LIFETIME). @default 24 h */
  maxTokenLifetimeSeconds?: number;
  /** API keys (`fgk_...`); without it, they are refused. */
  apiKeys?: ApiKeyVerifier;
}

/** Verifies an `Authorization` value into who and until when. @throws AuthenticationError */
export type Authenticator = (authorization: string | undefined | null) => Promise<VerifiedBearer>;

/**
 * The gateway's one verification of client credentials, used by POST /graphql, graphql-ws's
 * `connection_init` and SSE alike: `Bearer <key>` for an API key (`fgk_...`, verified by the
 * profiles service, see apikeys.ts), else `Bearer <JWT>`: HS256 with the development secret or an
 * asymmetric algorithm with the identity provider's keys (createJwtVerifier), each verified JWT
 * remembered by its text (createBearerVerifier) until it expires.
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  if (options.jwtSecret === undefined && options.oidc === undefined)
    throw new Error('no way to sign in: configure AUTH_JWT_SECRET, AUTH_JWKS_URL, or both');
  const jwt = createBearerVerifier(
    createJwtVerifier({
      hs256Secret: options.jwtSecret,
      oidc: options.oidc,
      maxLifetimeSeconds: options.maxTokenLifetimeSeconds,
    }),
  );
  return async (authorization) => {
    const token = bearerToken(authorization);
    if (isApiKey(token)) {
      if (!options.apiKeys) throw new AuthenticationError('API keys are not accepted here', 'invalid');
      return options.apiKeys.verify(token);
    }
    return jwt(authorization);
  };
}
