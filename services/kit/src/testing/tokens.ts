import { generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { DEFAULT_MAX_TOKEN_LIFETIME_SECONDS } from '../auth/tokens.js';

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const secretKey = (secret: string) => new TextEncoder().encode(secret);

/** An HS256 token of exactly this payload: no claim added. */
export const signHs256 = (payload: JWTPayload, secret: string): Promise<string> =>
  new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(secretKey(secret));

/**
 * Client bearer tokens that must all be refused (UNAUTHENTICATED), each named by its defect and
 * otherwise valid for `claims` (a tenant and project the platform knows, say): algorithm `none`,
 * other algorithms, another key, `exp` missing or too far, `nbf` or `iat` in the future, claims
 * missing, expired. `maxLifetimeSeconds` is the verifier's (AUTH_MAX_TOKEN_LIFETIME).
 */
export async function hostileTokens(
  secret: string,
  claims: { sub: string; tenantId: string; projects?: Record<string, string> },
  maxLifetimeSeconds = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
): Promise<[string, string][]> {
  const t = Math.floor(Date.now() / 1000);
  const valid = { ...claims, iat: t, exp: t + 600 };
  const rsa = await generateKeyPair('RS256');
  const { sub, tenantId } = claims;
  return [
    ['alg none', `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(valid)}.`],
    [
      'alg none with a signature',
      `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(valid)}.${Buffer.from('x').toString('base64url')}`,
    ],
    [
      'HS512 with the right secret',
      await new SignJWT(valid).setProtectedHeader({ alg: 'HS512' }).sign(secretKey(secret)),
    ],
    [
      'HS384 with the right secret',
      await new SignJWT(valid).setProtectedHeader({ alg: 'HS384' }).sign(secretKey(secret)),
    ],
    ['RS256-signed', await new SignJWT(valid).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey)],
    ['signed with another key', await signHs256(valid, `${secret}-but-another`)],
    ['without exp', await signHs256({ ...claims, iat: t }, secret)],
    ['without exp nor iat', await signHs256({ ...claims }, secret)],
    [
      'living longer than the maximum',
      await signHs256({ ...claims, iat: t, exp: t + maxLifetimeSeconds + 120 }, secret),
    ],
    [
      'without iat and expiring beyond the maximum',
      await signHs256({ ...claims, exp: t + maxLifetimeSeconds + 120 }, secret),
    ],
    ['expiring in a century', await signHs256({ ...claims, iat: t, exp: t + 100 * 365 * 86_400 }, secret)],
    ['not valid before a minute from now', await signHs256({ ...valid, nbf: t + 60 }, secret)],
    ['issued a minute in the future', await signHs256({ ...claims, iat: t + 60, exp: t + 600 }, secret)],
    ['without sub', await signHs256({ tenantId, iat: t, exp: t + 600 }, secret)],
    ['without tenantId', await signHs256({ sub, iat: t, exp: t + 600 }, secret)],
    ['with a string exp', await signHs256({ ...claims, iat: t, exp: String(t + 600) as unknown as number }, secret)],
    ['expired a minute ago', await signHs256({ ...claims, iat: t - 600, exp: t - 60 }, secret)],
  ];
}
