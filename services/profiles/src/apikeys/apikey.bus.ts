import { BusError, Identity, type Bus, type Logger } from '@fleetgraph/kit';
import { apiKeyRevoked, profilesNode, verifyApiKey } from '@fleetgraph/schema';
import type { ApiKey } from './apikey.js';
import { readableApiKey } from './apikey.reference.js';
import type { ApiKeyRepository } from './apikey.repo.js';

/**
 * Answers the gateway's `profiles.v1.apikey.verify`: the key of the id whose secret hashes to the
 * hash sent (the secret itself never travels), revoked and expired ones included for the gateway
 * to refuse with the reason; NOT_FOUND otherwise, for an unknown id and a wrong secret alike.
 */
export function serveApiKeyRequests(bus: Bus, keys: ApiKeyRepository): void {
  bus.serve(verifyApiKey, async ({ id, secretHash }) => {
    const key = await keys.verify(id, secretHash);
    if (!key) throw new BusError('NOT_FOUND', 'no such API key');
    return {
      id: key.id,
      tenantId: key.tenantId,
      projectId: key.projectId,
      role: key.role,
      expiresAt: key.expiresAt,
      revokedAt: key.revokedAt,
    };
  });
  // Query.node (the clusters subgraph) asks whether the caller may read a key, as its reference would.
  bus.serve(
    profilesNode,
    async ({ id, claims }) => ({ readable: (await readableApiKey(keys, new Identity(claims), id)) !== null }),
    {
      tokens: { type: 'ApiKey' },
    },
  );
}

/** Tells every gateway replica that a key is revoked, so that each forgets it at once. */
export type RevocationAnnouncer = (key: ApiKey) => Promise<void>;

/**
 * Announces revocations on core NATS (`profiles.v1.apikey.revoked`), and waits (up to a second)
 * until NATS has the announcement, so that when revokeApiKey answers every gateway has been told.
 * At most once: a gateway that misses it (away from NATS) forgets every key when it reconnects,
 * and any other within its cache lifetime, which bounds how long a missed revocation goes unheard.
 */
export function natsRevocationAnnouncer(bus: Bus, log: Logger): RevocationAnnouncer {
  return async (key) => {
    try {
      bus.send(apiKeyRevoked, { id: key.id, tenantId: key.tenantId });
      await Promise.race([
        bus.flush(),
        new Promise((_resolve, reject) =>
          setTimeout(() => reject(new Error('NATS did not confirm in 1 s')), 1_000).unref(),
        ),
      ]);
    } catch (error) {
      log.warn(
        { err: error, apiKeyId: key.id },
        'could not announce an API key revocation; gateways forget it within their cache lifetime',
      );
    }
  };
}
