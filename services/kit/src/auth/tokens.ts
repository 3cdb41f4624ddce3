import { jwtVerify, SignJWT, errors as joseErrors } from 'jose';
import { LRUCache } from 'lru-cache';
import { claimsSchema, Identity, type Claims } from './identity.js';

/** The header in which the gateway forwards the verified caller to subgraphs. */
export const INTERNAL_IDENTITY_HEADER = 'x-fleetgraph-identity';

const INTERNAL_AUDIENCE = 'fleetgraph-subgraph';
const INTERNAL_ISSUER = 'fleetgraph-gateway';

/** A token that cannot be trusted: missing, malformed, badly signed, expired, or with invalid claims. */
export class AuthenticationError extends Error {
  constructor(
    message: string,
    readonly reason: 'missing' | 'invalid' | 'expired',
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'AuthenticationError';
  }
}

const key = (secret: string) => new TextEncoder().encode(secret);

async function verify(token: string, secret: string, options: { audience?: string; issuer?: string }) {
  try {
    const { payload } = await jwtVerify(token, key(secret), { algorithms: ['HS256'], ...options });
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) throw new AuthenticationError(`token claims are invalid: ${claims.error.issues[0]?.message}`, 'invalid');
    return { claims: claims.data, expiresAt: typeof payload.exp === 'number' ? new Date(payload.exp * 1000) : undefined };
  } catch (error) {
    if (error instanceof AuthenticationError) throw error;
    if (error instanceof joseErrors.JWTExpired) throw new AuthenticationError('token expired', 'expired', { cause: error });
    throw new AuthenticationError('token is invalid', 'invalid', { cause: error });
  }
}

/**
 * Verifies a client's bearer JWT (HS256 with AUTH_JWT_SECRET), from an `Authorization` value
 * such as `Bearer eyJ...`. @throws AuthenticationError
 */
export async function verifyBearer(authorization: string | undefined | null, secret: string): Promise<VerifiedBearer> {
  if (!authorization) throw new AuthenticationError('missing bearer token', 'missing');
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match?.[1]) throw new AuthenticationError('authorization must be "Bearer <token>"', 'invalid');
  const { claims, expiresAt } = await verify(match[1], secret, {});
  return { identity: new Identity(claims), expiresAt };
}

/** A verified bearer token: who, and until when. */
export interface VerifiedBearer {
  identity: Identity;
  expiresAt?: Date;
}

/**
 * verifyBearer with a memory of the tokens it verified, by their whole text (signature
 * included, so only the very same token can hit): a client sends the same token with every
 * request and every WebSocket it opens, and each verification costs some 100 µs of CPU (jose,
 * WebCrypto). A remembered token is still refused once expired. The connections of one token
 * share its Identity.
 */
export function createBearerVerifier(secret: string, options: { max?: number } = {}): (authorization: string | undefined | null) => Promise<VerifiedBearer> {
  const verified = new LRUCache<string, VerifiedBearer>({ max: options.max ?? 10_000 });
  return async (authorization) => {
    if (!authorization) throw new AuthenticationError('missing bearer token', 'missing');
    const known = verified.get(authorization);
    if (known) {
      if (known.expiresAt === undefined || known.expiresAt.getTime() > Date.now()) return known;
      verified.delete(authorization);
      throw new AuthenticationError('token expired', 'expired');
    }
    const result = await verifyBearer(authorization, secret);
    verified.set(authorization, result);
    return result;
  };
}

/** Signs a client JWT, for development tokens and tests. */
export async function signBearer(claims: Claims, secret: string, expiresIn: string | number = '12h'): Promise<string> {
  return new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(expiresIn).sign(key(secret));
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
  if (!header) throw new AuthenticationError(`missing ${INTERNAL_IDENTITY_HEADER} header`, 'missing');
  const { claims } = await verify(header, secret, { audience: INTERNAL_AUDIENCE, issuer: INTERNAL_ISSUER });
  return new Identity(claims);
}
