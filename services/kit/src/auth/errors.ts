/**
 * A credential that cannot be trusted: missing, malformed, badly signed, expired, revoked, or with
 * invalid claims (`missing`, `invalid`, `expired`); or one that cannot be checked now because what
 * vouches for it (the identity provider's keys, the service that holds API keys) cannot be
 * reached (`unavailable`: the client retries rather than signing in again).
 */
export class AuthenticationError extends Error {
  constructor(
    message: string,
    readonly reason: 'missing' | 'invalid' | 'expired' | 'unavailable',
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'AuthenticationError';
  }
}
