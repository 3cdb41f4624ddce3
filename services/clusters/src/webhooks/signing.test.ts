import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { afterFailure, shouldDisable, type RetrySettings } from './schedule.js';
import { generateSecret, signatureHeaders } from './signing.js';

describe('webhook signatures', () => {
  const body = JSON.stringify({
    type: 'CLUSTER_PHASE',
    timestamp: '2026-01-01T00:00:00.000Z',
    data: { phase: 'RUNNING' },
  });

  it('should sign so that the standardwebhooks verifier accepts the delivery, and refuses it altered', () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const headers = signatureHeaders([secret], 'msg_01TEST', new Date(), body);
    expect(headers['webhook-id']).toBe('msg_01TEST');
    expect(headers['webhook-timestamp']).toMatch(/^\d{10}$/);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'msg_other' })).toThrow(
      WebhookVerificationError,
    );
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow(WebhookVerificationError);
  });

  it('should carry one signature per secret, so that either secret verifies while one is rotated out', () => {
    const [current, previous] = [generateSecret(), generateSecret()];
    const headers = signatureHeaders([current, previous], 'msg_1', new Date(), body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(current).verify(body, headers)).toBeTruthy();
    expect(new Webhook(previous).verify(body, headers)).toBeTruthy();
  });

  it('should date each attempt, so that a receiver refuses a replayed old one', () => {
    const secret = generateSecret();
    const old = signatureHeaders([secret], 'msg_1', new Date(Date.now() - 10 * 60_000), body);
    expect(() => new Webhook(secret).verify(body, old)).toThrow(/timestamp/i);
  });
});

describe('webhook retries', () => {
  const settings: RetrySettings = { baseMs: 5_000, capMs: 3_600_000, giveUpAfterMs: 24 * 3_600_000 };
  const queuedAt = new Date('2026-01-01T00:00:00Z');
  const at = (ms: number) => new Date(queuedAt.getTime() + ms);
  const delay = (attempts: number, random: number, nowMs = 0) => {
    const next = afterFailure(attempts, queuedAt, at(nowMs), settings, () => random);
    return next.kind === 'retry' ? next.at.getTime() - at(nowMs).getTime() : null;
  };

  it.each([
    [1, 5_000],
    [2, 10_000],
    [3, 20_000],
    [8, 640_000],
    [10, 2_560_000],
    [11, 3_600_000],
    [30, 3_600_000],
  ])('should wait base * 2^(n-1), capped, after the failed attempt number %i: %i ms', (attempts, expected) => {
    expect(delay(attempts, 0.5)).toBe(expected);
  });

  it('should spread retries with jitter between half and one and a half times the delay', () => {
    expect(delay(3, 0)).toBe(10_000);
    expect(delay(3, 0.999999)).toBe(30_000);
  });

  it('should try for a day, making the last attempt at the deadline, then give up', () => {
    const day = settings.giveUpAfterMs;
    expect(delay(20, 0.5, day - 60_000)).toBe(60_000);
    expect(afterFailure(21, queuedAt, at(day), settings)).toEqual({ kind: 'give-up' });
    // Attempts over the day with the default settings and no jitter: about 33.
    let attempts = 0;
    for (let now = 0; ; attempts++) {
      const next = afterFailure(attempts + 1, queuedAt, at(now), settings, () => 0.5);
      if (next.kind === 'give-up') break;
      now = next.at.getTime() - queuedAt.getTime();
    }
    expect(attempts).toBeGreaterThan(25);
    expect(attempts).toBeLessThan(40);
  });

  it('should disable a webhook only once its deliveries have failed for the whole period', () => {
    expect(shouldDisable(null, at(2 * settings.giveUpAfterMs), settings)).toBe(false);
    expect(shouldDisable(queuedAt, at(settings.giveUpAfterMs - 1), settings)).toBe(false);
    expect(shouldDisable(queuedAt, at(settings.giveUpAfterMs), settings)).toBe(true);
  });
});
