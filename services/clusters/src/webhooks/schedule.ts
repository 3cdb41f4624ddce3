import { backoffMs } from '../domain/backoff.js';

/** When failed deliveries are tried again, and when a webhook gives up. */
export interface RetrySettings {
  /** The first retry's delay; each further one doubles it. */
  baseMs: number;
  /** The longest delay between two attempts. */
  capMs: number;
  /**
   * A delivery still failing this long after its first attempt fails for good; a webhook whose
   * deliveries have all failed for this long is disabled.
   */
  giveUpAfterMs: number;
}

/** Five seconds doubling to an hour (with jitter), for a day: about 30 attempts. */
export const DEFAULT_RETRY: RetrySettings = { baseMs: 5_000, capMs: 3_600_000, giveUpAfterMs: 24 * 3_600_000 };

/** What follows a failed attempt. */
export type AfterFailure = { kind: 'retry'; at: Date } | { kind: 'give-up' };

/**
 * After the `attempts`-th failed attempt of a delivery first tried at `firstAttemptAt`: try again after a
 * capped exponential backoff with jitter (0.5x to 1.5x), or give up once the delivery has been
 * failing for `giveUpAfterMs`. A retry is never scheduled past that point, so the last attempt
 * is made at the deadline.
 */
export function afterFailure(
  attempts: number,
  firstAttemptAt: Date,
  now: Date,
  settings: RetrySettings,
  random: () => number = Math.random,
): AfterFailure {
  const deadline = firstAttemptAt.getTime() + settings.giveUpAfterMs;
  if (now.getTime() >= deadline) return { kind: 'give-up' };
  const at = Math.min(deadline, now.getTime() + backoffMs(attempts, settings, random));
  return { kind: 'retry', at: new Date(at) };
}

/** Whether a webhook whose deliveries have failed since `failingSince` (and none succeeded) is disabled now. */
export function shouldDisable(failingSince: Date | null, now: Date, settings: RetrySettings): boolean {
  return failingSince !== null && now.getTime() - failingSince.getTime() >= settings.giveUpAfterMs;
}
