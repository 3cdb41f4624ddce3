import { VersionConflictError, type Collection, type Identity, type Store, type StoredDoc } from '@fleetgraph/kit';
import { hashApiKeySecret } from '@fleetgraph/schema';
import { ulid } from 'ulid';
import {
  API_KEY_LIMITS,
  isActive,
  lastUseDue,
  newApiKeySecret,
  secretHashMatches,
  type ApiKey,
  type ApiKeyDraft,
} from './apikey.js';

type StoredApiKey = ApiKey & StoredDoc;

/** How often a compare-and-set write is tried again after another write got there first. */
const CAS_ATTEMPTS = 5;

/**
 * API keys in the store (collection `api_keys`): the secret's hash only. Reads for a caller are
 * scoped like every read (a key of another tenant, or of a project the caller cannot read, is
 * indistinguishable from a missing one); the gateway's verification reads by id and hash.
 */
export class ApiKeyRepository {
  private constructor(private readonly keys: Collection<StoredApiKey>) {}

  static async open(store: Store): Promise<ApiKeyRepository> {
    const keys = await store.collection<StoredApiKey>({
      name: 'api_keys',
      indexes: [{ fields: ['tenantId', 'projectId', 'createdAt'] }, { fields: ['tenantId', 'projectId', 'revokedAt'] }],
    });
    return new ApiKeyRepository(keys);
  }

  /** Stores a new key; its secret is returned here, once, and kept nowhere. */
  async create(
    tenantId: string,
    createdBy: string,
    draft: ApiKeyDraft,
    now = new Date(),
  ): Promise<{ key: ApiKey; secret: string }> {
    const secret = newApiKeySecret();
    const key: ApiKey = {
      id: `apk_${ulid()}`,
      tenantId,
      projectId: draft.projectId,
      name: draft.name.trim(),
      role: draft.role,
      secretHash: hashApiKeySecret(secret),
      createdBy,
      createdAt: now.toISOString(),
      expiresAt: draft.expiresAt ? draft.expiresAt.toISOString() : null,
      lastUsedAt: null,
      revokedAt: null,
    };
    await this.keys.insert(key);
    return { key, secret };
  }

  /** Keys of a project that are not revoked (expired ones included). */
  countUnrevoked(tenantId: string, projectId: string): Promise<number> {
    return this.keys.count({ tenantId, projectId, revokedAt: null });
  }

  /** A project's keys, newest first, at most API_KEY_LIMITS.listed. */
  async list(tenantId: string, projectId: string): Promise<ApiKey[]> {
    const page = await this.keys.find({
      where: { tenantId, projectId },
      orderBy: [{ field: 'createdAt', direction: 'desc' }],
      first: API_KEY_LIMITS.listed,
    });
    return page.nodes.map(fromStored);
  }

  /** A key the caller may see (of its tenant, in a project it can read), or null. */
  async get(identity: Identity, id: string): Promise<ApiKey | null> {
    const doc = await this.keys.get(id);
    return doc && identity.canSee(doc) ? fromStored(doc) : null;
  }

  /** Revokes a key (a revoked one stays as it was); null when it is gone. */
  async revoke(id: string, now = new Date()): Promise<ApiKey | null> {
    for (let attempt = 1; ; attempt++) {
      const doc = await this.keys.get(id);
      if (!doc) return null;
      if (doc.revokedAt !== null) return fromStored(doc);
      try {
        return fromStored(await this.keys.replace({ ...doc, revokedAt: now.toISOString() }));
      } catch (error) {
        // A last use written meanwhile: read it again.
        if (!(error instanceof VersionConflictError) || attempt >= CAS_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * The key of this id whose secret hashes to `secretHash` (compared in constant time), revoked
   * and expired ones included; null otherwise. A key that can be used has this use recorded as its
   * last, unless one was recorded less than LAST_USE_RESOLUTION_MS before.
   */
  async verify(id: string, secretHash: string, now = new Date()): Promise<ApiKey | null> {
    const doc = await this.keys.get(id);
    if (!doc || !secretHashMatches(doc.secretHash, secretHash)) return null;
    if (!isActive(doc, now) || !lastUseDue(doc, now)) return fromStored(doc);
    try {
      return fromStored(await this.keys.replace({ ...doc, lastUsedAt: now.toISOString() }));
    } catch (error) {
      // Another replica recorded a use, or the key was revoked, meanwhile: what is stored now stands.
      if (!(error instanceof VersionConflictError)) throw error;
      const current = await this.keys.get(id);
      return current && fromStored(current);
    }
  }
}

function fromStored(doc: StoredApiKey): ApiKey {
  const { version: _version, ...key } = doc;
  return key;
}
