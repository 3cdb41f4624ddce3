import { createHash } from 'node:crypto';
import { NodeRoles, type Machine, type NodeRole, type Tags } from './provider.js';

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

/** The role a machine's tags name; WORKER when they name no known one. */
export function roleOf(tags: Tags): NodeRole {
  const value = tags[TagKeys.role];
  return (NodeRoles as readonly string[]).includes(value ?? '') ? (value as NodeRole) : 'WORKER';
}

/**
 * Whose and what a machine is, read back from the tags {@link machineTags} put on it: its
 * cluster, pool, name (else `fallbackName`: the cloud's own name or id) and role.
 */
export function machineOf(tags: Tags, fallbackName: string): Pick<Machine, 'name' | 'clusterId' | 'pool' | 'role'> {
  return {
    name: tags[TagKeys.machine] ?? fallbackName,
    clusterId: tags[TagKeys.cluster] ?? '',
    pool: tags[TagKeys.pool] ?? '',
    role: roleOf(tags),
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
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
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
