/**
 * Signatures per the Standard Webhooks specification (the `standardwebhooks` package): each
 * attempt carries `webhook-id` (the delivery's id, the same for every attempt: receivers
 * de-duplicate with it), `webhook-timestamp` (the attempt's time, in seconds) and
 * `webhook-signature` (`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per secret in
 * use, separated by spaces, so that a receiver holding either secret accepts a delivery while a
 * rotated secret is phased out).
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** The prefix of a Standard Webhooks secret. */
export const SECRET_PREFIX = 'whsec_';

/** A new signing secret: `whsec_` and 32 random bytes in base64. */
export function generateSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

/** The headers of one attempt, signed with every secret given (newest first). */
export function signatureHeaders(
  secrets: readonly string[],
  id: string,
  timestamp: Date,
  body: string,
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  if (secrets.length === 0) throw new RangeError('a delivery needs a secret to be signed with');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(id, timestamp, body)).join(' '),
  };
}
