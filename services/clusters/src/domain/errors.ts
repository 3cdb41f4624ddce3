/**
 * A write lost a race it should not retry: a stale generation (the caller reports a userError), or
 * a lease lost to another replica.
 */
export class StaleWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StaleWriteError';
  }
}
