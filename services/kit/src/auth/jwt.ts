import { errors as joseErrors, type JWTPayload } from 'jose';
import { AuthenticationError } from './errors.js';

/**
 * What HS256 and OIDC verification share, kept out of the kit's exports: the lifetime rule and
 * the translation of jose's failures into AuthenticationErrors.
 */

/** Clock skew tolerated between the token's issuer and this process, on `exp`, `nbf` and `iat`. */
export const TOKEN_CLOCK_TOLERANCE_SECONDS = 30;

/**
 * The lifetime rule of client tokens, after jose checked the signature, `exp` (required) and
 * `nbf`: no `iat` in the future, and at most `maxLifetimeSeconds` from `iat` (from now without
 * one) to `exp`. @returns the expiry @throws AuthenticationError
 */
export function checkLifetime(
  payload: JWTPayload,
  options: { maxLifetimeSeconds?: number; clockToleranceSeconds?: number },
): Date {
  const tolerance = options.clockToleranceSeconds ?? TOKEN_CLOCK_TOLERANCE_SECONDS;
  const exp = payload.exp!;
  const now = Math.floor(Date.now() / 1000);
  if (payload.iat !== undefined && payload.iat > now + tolerance)
    throw new AuthenticationError('token is issued in the future', 'invalid');
  if (options.maxLifetimeSeconds !== undefined) {
    const lifetime = exp - (payload.iat ?? now);
    if (lifetime > options.maxLifetimeSeconds)
      throw new AuthenticationError(`token lifetime exceeds the maximum of ${options.maxLifetimeSeconds} s`, 'invalid');
  }
  return new Date(exp * 1000);
}

/** A failure of jwtVerify (or of the checks after it) as the AuthenticationError a client is told. */
export function authenticationFailure(error: unknown): AuthenticationError {
  if (error instanceof AuthenticationError) return error;
  if (error instanceof joseErrors.JWTExpired)
    return new AuthenticationError('token expired', 'expired', { cause: error });
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'exp' && error.reason === 'missing')
      return new AuthenticationError('token has no expiry (exp)', 'invalid', { cause: error });
    if (error.claim === 'nbf')
      return new AuthenticationError('token is not valid yet (nbf)', 'invalid', { cause: error });
    if (error.claim === 'iss')
      return new AuthenticationError('token issuer is not accepted', 'invalid', { cause: error });
    if (error.claim === 'aud')
      return new AuthenticationError('token audience is not accepted', 'invalid', { cause: error });
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed)
    return new AuthenticationError('token algorithm is not accepted', 'invalid', { cause: error });
  if (error instanceof joseErrors.JWKSNoMatchingKey)
    return new AuthenticationError("no key of the identity provider matches the token's kid", 'invalid', {
      cause: error,
    });
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys)
    return new AuthenticationError('token is invalid', 'invalid', { cause: error });
  // The identity provider's keys could not be fetched (timeout, refused, not 200, not JSON): the
  // token may be good; the client should retry rather than sign in again.
  if (
    error instanceof joseErrors.JWKSTimeout ||
    (error instanceof joseErrors.JOSEError && /JSON Web Key Set/.test(error.message)) ||
    (error instanceof TypeError && /fetch/i.test(error.message))
  )
    return new AuthenticationError("the identity provider's keys cannot be fetched now; retry shortly", 'unavailable', {
      cause: error,
    });
  return new AuthenticationError('token is invalid', 'invalid', { cause: error });
}
