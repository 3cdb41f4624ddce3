import { jwtVerify, SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import { AuthenticationError } from './errors.js';
import { claimsSchema, Identity, type Claims } from './identity.js';
import { authenticationFailure, checkLifetime, TOKEN_CLOCK_TOLERANCE_SECONDS } from './jwt.js';

export { AuthenticationError } from './errors.js';
export { TOKEN_CLOCK_TOLERANCE_SECONDS } from './jwt.js';

/** The header in which the gateway forwards the verified caller to subgraphs. */
export const INTERNAL_IDENTITY_HEADER = 'x-fleetgraph-identity';

const INTERNAL_AUDIENCE = 'fleetgraph-subgraph';
const INTERNAL_ISSUER = 'fleetgraph-gateway';

/**
 * The subjects of API keys (`apikey:<id>`): no client token may claim one, so that an API key's
 * identity is never mistaken for a person's, nor a person's for a key's.
 */
export const API_KEY_SUBJECT_PREFIX = 'apikey:';

const key = (secret: string) => new TextEncoder().encode(secret);

/** The only signing algorithm accepted, for client and internal tokens alike. */
const ALGORITHM = 'HS256';

/** Default longest lifetime of a client bearer token (`AUTH_MAX_TOKEN_LIFETIME`): 24 hours. */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 24 * 60 * 60;

/** What a client bearer token must satisfy beyond its signature and claims. */
export interface BearerPolicy {
  /**
   * The longest lifetime accepted: `exp - iat`, or `exp - now` for a token without `iat`.
   * @default DEFAULT_MAX_TOKEN_LIFETIME_SECONDS (24 h)
   */
  maxLifetimeSeconds?: number;
  /** Clock skew tolerated on `exp`, `nbf` and `iat`. @default TOKEN_CLOCK_TOLERANCE_SECONDS (30 s) */
  clockToleranceSeconds?: number;
}

/**
 * A duration as configured (`AUTH_MAX_TOKEN_LIFETIME`): whole seconds (`3600`) or a number with
 * a unit, `s`, `m`, `h` or `d` (`90m`, `24h`, `7d`). Undefined when it is neither, or not positive.
 */
export function parseDurationSeconds(text: string): number | undefined {
  const match = /^\s*(\d+)\s*(s|m|h|d)?\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[(match[2] ?? 's').toLowerCase() as 's' | 'm' | 'h' | 'd'];
  const seconds = Number(match[1]) * unit;
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}

interface VerifyOptions {
  audience?: string;
  issuer?: string;
  clockToleranceSeconds?: number;
  /** Refuses tokens living longer (see BearerPolicy); unchecked when absent. */
  maxLifetimeSeconds?: number;
}

async function verify(token: string, secret: string, options: VerifyOptions) {
  const tolerance = options.clockToleranceSeconds ?? TOKEN_CLOCK_TOLERANCE_SECONDS;
  try {
    // HS256 only (`none` and every other algorithm refused), `exp` required, `nbf` honoured.
    const { payload } = await jwtVerify(token, key(secret), {
      algorithms: [ALGORITHM],
      requiredClaims: ['exp'],
      clockTolerance: tolerance,
      audience: options.audience,
      issuer: options.issuer,
    });
    const expiresAt = checkLifetime(payload, options);
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success)
      throw new AuthenticationError(`token claims are invalid: ${claims.error.issues[0]?.message}`, 'invalid');
    return { claims: claims.data, expiresAt };
  } catch (error) {
    throw authenticationFailure(error);
  }
}

/**
 * The token of an `Authorization` value such as `Bearer eyJ...` (the scheme in any letter case).
 * @throws AuthenticationError when there is none
 */
export function bearerToken(authorization: string | undefined | null): string {
  if (!authorization) throw new AuthenticationError('missing bearer token', 'missing');
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match?.[1]) throw new AuthenticationError('authorization must be "Bearer <token>"', 'invalid');
  return match[1];
}

/** Refuses the claims of a client token that names an API key's subject. @throws AuthenticationError */
export function assertPersonSubject(claims: Claims): Claims {
  if (claims.sub.startsWith(API_KEY_SUBJECT_PREFIX))
    throw new AuthenticationError(
      `token subjects starting with ${API_KEY_SUBJECT_PREFIX} are reserved for API keys`,
      'invalid',
    );
  return claims;
}

/** Verifies one client credential (a token, without its `Bearer` scheme) into who and until when. */
export type TokenVerifier = (token: string) => Promise<VerifiedBearer>;

/** A TokenVerifier of HS256 development tokens signed with `secret` (see verifyBearer). */
export function hs256Verifier(secret: string, policy: BearerPolicy = {}): TokenVerifier {
  return async (token) => {
    const { claims, expiresAt } = await verify(token, secret, {
      maxLifetimeSeconds: policy.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
      clockToleranceSeconds: policy.clockToleranceSeconds,
    });
    return { identity: new Identity(assertPersonSubject(claims)), expiresAt };
  };
}

/**
 * Verifies a client's bearer JWT (HS256 with AUTH_JWT_SECRET), from an `Authorization` value
 * such as `Bearer eyJ...`: it must carry `exp`, not live longer than the policy's maximum
 * (`exp - iat`, or `exp - now` without `iat`), and not be before its `nbf`, each within the
 * clock tolerance. @throws AuthenticationError
 */
export async function verifyBearer(
  authorization: string | undefined | null,
  secret: string,
  policy: BearerPolicy = {},
): Promise<VerifiedBearer> {
  return hs256Verifier(secret, policy)(bearerToken(authorization));
}

/** A verified bearer credential: who, and until when. */
export interface VerifiedBearer {
  identity: Identity;
  /** Every accepted token has an expiry; an API key created without one has none. */
  expiresAt?: Date;
}

/**
 * A verifier of `Authorization` values with a memory of the tokens it verified, by their whole
 * text (signature included, so only the very same token can hit): a client sends the same token
 * with every request and every WebSocket it opens, and each verification costs some 100 µs of CPU
 * (jose, WebCrypto). A remembered token is still refused once expired. The connections of one
 * token share its Identity. `source` verifies the tokens: an HS256 secret (verifyBearer's rules),
 * or any TokenVerifier (createJwtVerifier: HS256 and the organisation's identity provider).
 */
export function createBearerVerifier(
  source: string | TokenVerifier,
  options: BearerPolicy & { max?: number } = {},
): (authorization: string | undefined | null) => Promise<VerifiedBearer> {
  const verifyToken = typeof source === 'string' ? hs256Verifier(source, options) : source;
  const verified = new LRUCache<string, VerifiedBearer>({ max: options.max ?? 10_000 });
  return async (authorization) => {
    if (!authorization) throw new AuthenticationError('missing bearer token', 'missing');
    const known = verified.get(authorization);
    if (known) {
      if (known.expiresAt === undefined || known.expiresAt.getTime() > Date.now()) return known;
      verified.delete(authorization);
      throw new AuthenticationError('token expired', 'expired');
    }
    const result = await verifyToken(bearerToken(authorization));
    verified.set(authorization, result);
    return result;
  };
}

/** Signs a client JWT, for development tokens and tests. */
export async function signBearer(claims: Claims, secret: string, expiresIn: string | number = '12h'): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(key(secret));
}

/** Signs the internal identity header the gateway sends to subgraphs: short-lived, audience-bound. */
export async function signInternalIdentity(identity: Identity, secret: string): Promise<string> {
  return new SignJWT({ ...identity.claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(INTERNAL_ISSUER)
    .setAudience(INTERNAL_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key(secret));
}

/** Verifies the internal identity header. @throws AuthenticationError */
export async function verifyInternalIdentity(header: string | undefined | null, secret: string): Promise<Identity> {
  return (await verifyInternal(header, secret)).identity;
}

async function verifyInternal(header: string | undefined | null, secret: string) {
  if (!header) throw new AuthenticationError(`missing ${INTERNAL_IDENTITY_HEADER} header`, 'missing');
  const { claims, expiresAt } = await verify(header, secret, { audience: INTERNAL_AUDIENCE, issuer: INTERNAL_ISSUER });
  return { identity: new Identity(claims), expiresAt };
}

/** How long the gateway reuses a caller's internal identity token: most of its 5 minutes. */
export const INTERNAL_IDENTITY_REUSE_MS = 4 * 60_000;

/**
 * Signs internal identities as `signInternalIdentity` does, reusing the token of an Identity
 * (the object: the gateway keeps one per verified credential) for `INTERNAL_IDENTITY_REUSE_MS` of
 * its 5 minutes, so that the subgraph fetches of a caller's requests carry the same token: signing
 * costs some 0.3 ms of CPU per fetch, and the same token lets subgraphs remember their
 * verification (createInternalIdentityVerifier) and the gateway share identical fetches in flight.
 */
export function createInternalIdentitySigner(
  secret: string,
  options: { reuseMs?: number; now?: () => number } = {},
): (identity: Identity) => Promise<string> {
  const reuseMs = options.reuseMs ?? INTERNAL_IDENTITY_REUSE_MS;
  const now = options.now ?? Date.now;
  const signed = new WeakMap<Identity, { token: Promise<string>; renewAt: number }>();
  return (identity) => {
    const known = signed.get(identity);
    if (known && known.renewAt > now()) return known.token;
    const token = signInternalIdentity(identity, secret);
    const entry = { token, renewAt: now() + reuseMs };
    signed.set(identity, entry);
    // A failure (never expected: HMAC) is not remembered.
    token.catch(() => {
      if (signed.get(identity) === entry) signed.delete(identity);
    });
    return token;
  };
}

/**
 * A verifier of internal identity headers that remembers the ones it verified (by their whole
 * text, signature included, until they expire; at most `max`): a gateway sends a caller's same
 * token for minutes (createInternalIdentitySigner), and each verification costs some 0.1-0.2 ms.
 * @throws AuthenticationError
 */
export function createInternalIdentityVerifier(
  secret: string,
  options: { max?: number } = {},
): (header: string | undefined | null) => Promise<Identity> {
  const verified = new LRUCache<string, { identity: Identity; expiresAt: number }>({ max: options.max ?? 10_000 });
  return async (header) => {
    const known = header ? verified.get(header) : undefined;
    if (known) {
      if (known.expiresAt > Date.now()) return known.identity;
      verified.delete(header!);
    }
    const { identity, expiresAt } = await verifyInternal(header, secret);
    // Within the clock tolerance past `exp` jose still accepts it; remembered until `exp` only.
    if (expiresAt) verified.set(header!, { identity, expiresAt: expiresAt.getTime() });
    return identity;
  };
}
