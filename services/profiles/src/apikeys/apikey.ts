import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { ProjectRoleName } from '@fleetgraph/schema';
import type { Problem } from '../domain/profile.js';

/**
 * API keys (service accounts) of a project: what they are and the rules they follow. Pure: no
 * I/O, no GraphQL, no NATS (randomness and hashing aside).
 */

/** An API key as stored: never its secret, only the secret's SHA-256. */
export interface ApiKey {
  /** `apk_<ULID>`. */
  id: string;
  tenantId: string;
  projectId: string;
  name: string;
  role: ProjectRoleName;
  /** The hex SHA-256 of the secret (hashApiKeySecret). */
  secretHash: string;
  /** Who created it (the creator's subject). */
  createdBy: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface ApiKeyDraft {
  projectId: string;
  name: string;
  role: ProjectRoleName;
  expiresAt?: Date | null;
}

export const API_KEY_LIMITS = {
  nameLength: 100,
  /** Keys of a project that are neither revoked nor expired. */
  activePerProject: 100,
  /** Keys `apiKeys` lists, newest first (revoked and expired ones included). */
  listed: 200,
} as const;

/** How often the last use of a key is written at most: uses closer together are not recorded. */
export const LAST_USE_RESOLUTION_MS = 60_000;

/** A new secret: 32 random bytes, base64url (43 characters). */
export const newApiKeySecret = (): string => randomBytes(32).toString('base64url');

/** Whether a given secret hash is the stored one, compared in constant time. */
export function secretHashMatches(stored: string, given: string): boolean {
  const a = Buffer.from(stored, 'hex');
  const b = Buffer.from(given, 'hex');
  return a.length === 32 && b.length === 32 && timingSafeEqual(a, b);
}

/** Whether the key can be used at `now`: neither revoked nor expired. */
export const isActive = (key: Pick<ApiKey, 'revokedAt' | 'expiresAt'>, now: Date): boolean =>
  key.revokedAt === null && (key.expiresAt === null || Date.parse(key.expiresAt) > now.getTime());

/** Whether a use at `now` should be written as the key's last use. */
export const lastUseDue = (key: Pick<ApiKey, 'lastUsedAt'>, now: Date): boolean =>
  key.lastUsedAt === null || now.getTime() - Date.parse(key.lastUsedAt) >= LAST_USE_RESOLUTION_MS;

/** Every problem of a new key, in input order; empty when it is valid. */
export function validateApiKey(draft: ApiKeyDraft, now: Date): Problem[] {
  const problems: Problem[] = [];
  const name = draft.name.trim();
  if (name.length === 0 || name.length > API_KEY_LIMITS.nameLength || /[\p{Cc}]/u.test(draft.name))
    problems.push({
      field: ['input', 'name'],
      code: 'INVALID_NAME',
      message: `a name of 1 to ${API_KEY_LIMITS.nameLength} characters, without control characters`,
    });
  if (draft.expiresAt != null) {
    if (Number.isNaN(draft.expiresAt.getTime()))
      problems.push({ field: ['input', 'expiresAt'], code: 'INVALID_EXPIRY', message: 'expiresAt is not a date' });
    else if (draft.expiresAt.getTime() <= now.getTime())
      problems.push({
        field: ['input', 'expiresAt'],
        code: 'INVALID_EXPIRY',
        message: 'expiresAt must be in the future',
      });
  }
  return problems;
}
