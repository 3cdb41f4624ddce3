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

/** A payload that does not match its subject's schema: nothing was sent. */
export class PayloadSchemaError extends TypeError {
  constructor(
    /** The subject family, e.g. `agent.v1.{clusterId}.report`. */
    readonly family: string,
    /** Where in the payload the first problem is (`nodes.0.name`), empty at the root. */
    readonly path: string,
    /** What is wrong there. */
    readonly problem: string,
    options?: ErrorOptions,
  ) {
    super(`payload does not match ${family}: ${path || '(root)'}: ${problem}`, options);
    this.name = 'PayloadSchemaError';
  }
}

/** An encoded payload longer than the sender allowed: nothing was sent. */
export class PayloadTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number,
    options?: ErrorOptions,
  ) {
    super(`payload of ${bytes} bytes exceeds ${limit}`, options);
    this.name = 'PayloadTooLargeError';
  }
}
