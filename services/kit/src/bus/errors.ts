/** Codes of errors that travel over NATS request/reply as `{ code, message }`. */
export const BusErrorCodes = {
  BAD_REQUEST: 'The request did not match the subject schema.',
  NOT_FOUND: 'The entity asked for does not exist (or is not visible to the caller).',
  CONFLICT: 'The request conflicts with the current state.',
  NO_RESPONDERS: 'No service is serving the subject.',
  TIMEOUT: 'The service did not answer in time.',
  BAD_REPLY: 'The reply did not match the subject schema.',
  INTERNAL: 'The service failed unexpectedly.',
} as const;
export type BusErrorCode = keyof typeof BusErrorCodes;

/** A failed request: thrown by handlers to answer with a code, and by `request` on the caller's side. */
export class BusError extends Error {
  constructor(
    readonly code: BusErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'BusError';
  }
}
