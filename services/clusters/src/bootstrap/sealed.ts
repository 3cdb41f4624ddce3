/**
 * Secrets at rest (a cluster's PKI, its bootstrap tokens): AES-256-GCM with a key from
 * configuration (CLUSTER_SECRETS_KEY), bound to what they belong to (the cluster id as
 * additional data), so that a sealed value copied onto another cluster's document does not open.
 * Sealed values are `v1.<iv>.<ciphertext and tag>`, base64url.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export class SealError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SealError';
  }
}

export interface Sealer {
  seal(plaintext: string, boundTo: string): string;
  /** @throws SealError when the value was not sealed with this key for `boundTo`, or was altered. */
  open(sealed: string, boundTo: string): string;
}

/**
 * A sealer over a key of at least 32 characters (a passphrase or base64 of 32 random bytes);
 * the AES key is its SHA-256, so any such string makes a full-strength key.
 */
export function createSealer(secret: string): Sealer {
  if (secret.length < 32) throw new RangeError('the secrets key must be at least 32 characters');
  const key = createHash('sha256').update(secret).digest();
  return {
    seal(plaintext, boundTo) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(boundTo));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `v1.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },
    open(sealed, boundTo) {
      const [version, iv, body] = sealed.split('.');
      if (version !== 'v1' || !iv || !body) throw new SealError('not a sealed value');
      const data = Buffer.from(body, 'base64url');
      if (data.length < 16) throw new SealError('not a sealed value');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(boundTo));
        decipher.setAuthTag(data.subarray(data.length - 16));
        return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8');
      } catch (error) {
        throw new SealError('the sealed value does not open with this key for this owner', { cause: error });
      }
    },
  };
}
