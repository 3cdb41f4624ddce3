import { createHash } from 'node:crypto';
import { defineRequest, defineTopic } from '@fleetgraph/kit/core';
import { z } from 'zod';
import { enumOf } from './enums.js';

/** The role an API key acts with in its project: contract.graphql's `ProjectRole`. */
export const projectRoleNames = ['ADMIN', 'EDITOR', 'VIEWER'] as const;
export type ProjectRoleName = (typeof projectRoleNames)[number];
export const ProjectRoleName = enumOf(projectRoleNames);

/** An API key's id: `apk_` and a ULID. */
export const API_KEY_ID = /^apk_[0-9A-HJKMNP-TV-Z]{26}$/;

/**
 * An API key as its holder sends it, `fgk_<id>_<secret>`: the id, so that the key is found without
 * a scan, and 32 random bytes in base64url (43 characters). The prefix tells it from a JWT at a
 * glance (and to secret scanners).
 */
const API_KEY = /^fgk_(apk_[0-9A-HJKMNP-TV-Z]{26})_([A-Za-z0-9_-]{43})$/;

/** The prefix of every API key. */
export const API_KEY_PREFIX = 'fgk_';

/** The key text of an id and its secret. */
export const formatApiKey = (id: string, secret: string): string => `${API_KEY_PREFIX}${id}_${secret}`;

/** The id and secret of a key text; null when it is not one. */
export function parseApiKey(text: string): { id: string; secret: string } | null {
  const match = API_KEY.exec(text);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}

/**
 * What is stored of a key's secret, and what the gateway sends to have it checked: its SHA-256, in
 * hex. The secret is 256 random bits, so a plain hash is enough (no password stretching), and the
 * secret itself never leaves the gateway.
 */
export const hashApiKeySecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

const apiKeyId = z.string().regex(API_KEY_ID);

/**
 * `profiles.v1.apikey.verify`: the key of this id, if its secret hashes to `secretHash`, with
 * whether it is revoked or expired (the gateway refuses it then); NOT_FOUND when there is no such
 * key or the hash is another. A key found valid has its last use recorded (at most once a minute).
 */
export const verifyApiKey = defineRequest('profiles.v1.apikey.verify', {
  request: z.object({ id: apiKeyId, secretHash: z.string().regex(/^[0-9a-f]{64}$/) }),
  reply: z.object({
    id: apiKeyId,
    tenantId: z.string(),
    projectId: z.string(),
    role: z.enum(projectRoleNames),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  }),
});
export type VerifiedApiKey = z.infer<typeof verifyApiKey.reply>;

/**
 * `profiles.v1.apikey.revoked` (core NATS): a key was revoked. Every gateway replica listens
 * (no queue group) and forgets the key at once; one that missed it (NATS away) forgets every
 * key it knew when it reconnects, and any other within its short cache lifetime.
 */
export const apiKeyRevoked = defineTopic(
  'profiles.v1.apikey.revoked',
  z.object({ id: apiKeyId, tenantId: z.string() }),
);
