import { createHash } from 'node:crypto';
import type { NodeRole, Tags } from './provider.js';

/**
 * The tags Fleetgraph puts on what it creates, so that it can find it again by cluster id
 * alone. Keys avoid `/`, which Azure does not allow in tag names.
 */
export const TagKeys = {
  cluster: 'fleetgraph:cluster',
  pool: 'fleetgraph:pool',
  machine: 'fleetgraph:machine',
  role: 'fleetgraph:role',
  /** What part of a cluster network a resource is: `network`, or a role. */
  network: 'fleetgraph:network',
  zone: 'fleetgraph:zone',
  /** Azure only: the hash of the create's input, to tell a retry from a different request with the same token. */
  request: 'fleetgraph:request',
} as const;

/** Tags naming a machine's cluster, pool, name and role. */
export function machineTags(input: { clusterId: string; pool: string; machineName: string; role: NodeRole }): Tags {
  return {
    [TagKeys.cluster]: input.clusterId,
    [TagKeys.pool]: input.pool,
    [TagKeys.machine]: input.machineName,
    [TagKeys.role]: input.role,
  };
}

/** True when `tags` carries every key/value of `wanted`. */
export function hasTags(tags: Tags, wanted: Tags): boolean {
  return Object.entries(wanted).every(([k, v]) => tags[k] === v);
}

/** Hex SHA-256 of a string. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** JSON with object keys sorted, so that equal inputs hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * EC2 takes client tokens of up to 64 ASCII characters. Longer or non-ASCII tokens are hashed,
 * which keeps them stable: the same caller token always maps to the same EC2 token.
 */
export function ec2ClientToken(token: string): string {
  return token.length <= 64 && /^[\x21-\x7e]+$/.test(token) ? token : sha256(token).slice(0, 64);
}

/** A lowercase name of letters, digits and hyphens, at most `max` long, never empty. */
export function safeName(text: string, max: number): string {
  const cleaned = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, max)
    .replace(/-$/, '');
  return cleaned || 'x';
}
