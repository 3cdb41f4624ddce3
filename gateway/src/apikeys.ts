import { timingSafeEqual } from 'node:crypto';
import {
  API_KEY_SUBJECT_PREFIX,
  AuthenticationError,
  BusError,
  Identity,
  type Bus,
  type Logger,
  type VerifiedBearer,
} from '@fleetgraph/kit/core';
import {
  API_KEY_PREFIX,
  apiKeyRevoked,
  hashApiKeySecret,
  parseApiKey,
  verifyApiKey,
  type VerifiedApiKey,
} from '@fleetgraph/schema';
import { LRUCache } from 'lru-cache';

/** What createApiKeyVerifier needs. */
export interface ApiKeyVerifierOptions {
  bus: Bus;
  log: Logger;
  /**
   * How long a verified key is trusted without asking the profiles service again. Revocations are
   * heard at once; this bounds how long one this replica missed (NATS away) goes unheard, and sets
   * how precisely a key's last use is known. @default 30000
   */
  cacheTtlMs?: number;
  /** Keys remembered at most. @default 10000 */
  max?: number;
  /** How long the profiles service may take to answer. @default 3000 */
  timeoutMs?: number;
  /** Called with a revoked key's subject (`apikey:<id>`), to end the connections it holds. */
  onRevoked?: (subject: string) => void;
}

/** The gateway's API key verification (see createApiKeyVerifier). */
export interface ApiKeyVerifier {
  /** Verifies a key text (`fgk_...`) into its identity. @throws AuthenticationError */
  verify(key: string): Promise<VerifiedBearer>;
  /** Stops listening to revocations. */
  close(): void;
}

/** Whether a bearer token is an API key rather than a JWT. */
export const isApiKey = (token: string): boolean => token.startsWith(API_KEY_PREFIX);

interface Known {
  /** The SHA-256 of the secret that was verified. */
  hash: Buffer;
  verified: VerifiedBearer;
}

/**
 * Verifies API keys sent as bearer tokens by asking the profiles service (`profiles.v1.apikey.verify`,
 * with the key's id and its secret's SHA-256: the secret never leaves the gateway) and remembers a
 * verified key for `cacheTtlMs`, by id, with the hash it was verified with (compared in constant
 * time). A revocation (`profiles.v1.apikey.revoked`, heard by every replica) forgets the key at once
 * and ends its connections; after a NATS disconnection, when revocations may have been missed, every
 * key is forgotten. An expired key is refused at its expiry, remembered or not. Nothing here logs a
 * key or its secret.
 */
export function createApiKeyVerifier(options: ApiKeyVerifierOptions): ApiKeyVerifier {
  const { bus, log } = options;
  const known = new LRUCache<string, Known>({ max: options.max ?? 10_000, ttl: options.cacheTtlMs ?? 30_000 });
  /** Verifications in flight, by id and hash: a burst of requests with one key asks once. */
  const inFlight = new Map<string, Promise<VerifiedBearer>>();
  /**
   * Counts revocations heard (and disconnections); `revokedAt` keeps the count at each key's last
   * one, so that an answer asked for before a revocation is not remembered after it.
   */
  let generation = 0;
  const revokedAt = new LRUCache<string, number>({ max: 10_000 });
  let disconnectedAt = 0;

  const listening = bus.listen(apiKeyRevoked, {
    handle: ({ id }) => {
      known.delete(id);
      revokedAt.set(id, ++generation);
      options.onRevoked?.(`${API_KEY_SUBJECT_PREFIX}${id}`);
    },
  });
  const stopStatus = bus.onStatus((status) => {
    if (status !== 'disconnect' && status !== 'reconnect') return;
    // Revocations sent meanwhile were lost with the connection: ask again for every key.
    known.clear();
    disconnectedAt = ++generation;
  });

  async function ask(id: string, hash: string): Promise<VerifiedBearer> {
    for (let attempt = 1; ; attempt++) {
      const asked = generation;
      let reply: VerifiedApiKey;
      try {
        reply = await bus.request(verifyApiKey, { id, secretHash: hash }, { timeoutMs: options.timeoutMs ?? 3_000 });
      } catch (error) {
        if (error instanceof BusError && error.code === 'NOT_FOUND')
          throw new AuthenticationError('API key is invalid', 'invalid');
        log.warn({ err: error, apiKeyId: id }, 'could not verify an API key');
        throw new AuthenticationError('API keys cannot be verified now; retry shortly', 'unavailable', {
          cause: error,
        });
      }
      if (reply.revokedAt !== null) throw new AuthenticationError('API key is revoked', 'invalid');
      const expiresAt = reply.expiresAt === null ? undefined : new Date(reply.expiresAt);
      if (expiresAt && expiresAt.getTime() <= Date.now()) throw new AuthenticationError('API key expired', 'expired');
      const verified: VerifiedBearer = {
        identity: new Identity({
          sub: `${API_KEY_SUBJECT_PREFIX}${id}`,
          tenantId: reply.tenantId,
          projects: { [reply.projectId]: reply.role.toLowerCase() as 'admin' | 'editor' | 'viewer' },
        }),
        expiresAt,
      };
      // A revocation heard while asking: the answer may predate it; ask once more (the revocation
      // is stored before it is announced, so the second answer knows it).
      if ((revokedAt.get(id) ?? 0) > asked && attempt === 1) continue;
      if ((revokedAt.get(id) ?? 0) <= asked && disconnectedAt <= asked)
        known.set(id, { hash: Buffer.from(hash, 'hex'), verified });
      return verified;
    }
  }

  return {
    async verify(text) {
      const key = parseApiKey(text);
      if (!key) throw new AuthenticationError('API key is malformed', 'invalid');
      const hash = hashApiKeySecret(key.secret);
      const remembered = known.get(key.id);
      if (remembered && timingSafeEqual(remembered.hash, Buffer.from(hash, 'hex'))) {
        const { expiresAt } = remembered.verified;
        if (expiresAt === undefined || expiresAt.getTime() > Date.now()) return remembered.verified;
        known.delete(key.id);
        throw new AuthenticationError('API key expired', 'expired');
      }
      const flight = `${key.id}:${hash}`;
      let verifying = inFlight.get(flight);
      if (!verifying) {
        verifying = ask(key.id, hash).finally(() => inFlight.delete(flight));
        inFlight.set(flight, verifying);
      }
      return verifying;
    },
    close() {
      listening.unsubscribe();
      stopStatus();
    },
  };
}
