import { leaseFields } from '@fleetgraph/kit';
import type { LogBundleStatus as Status, LogParts } from '@fleetgraph/schema';

export type { LogParts };

export const LogBundleStatus = {
  REQUESTED: 'REQUESTED',
  COLLECTING: 'COLLECTING',
  READY: 'READY',
  FAILED: 'FAILED',
} as const satisfies Record<Status, Status>;
export type LogBundleStatus = Status;

/** Statuses in which a collection is still to run or running. */
export const PENDING_STATUSES: readonly LogBundleStatus[] = ['REQUESTED', 'COLLECTING'];

/** A log bundle: a request for a cluster's logs, and once READY the archive that holds them. */
export interface LogBundle {
  id: string;
  tenantId: string;
  projectId: string;
  clusterId: string;
  /** The cluster's name when requested: the archive is named after it. */
  clusterName: string;
  status: LogBundleStatus;
  /** Why it FAILED, or what it is doing. */
  message: string | null;
  parts: LogParts;
  /** The user who asked. */
  requestedBy: string;
  /** ISO-8601 times. */
  requestedAt: string;
  startedAt: string | null;
  readyAt: string | null;
  /** The archive's file name and size, once READY. */
  fileName: string | null;
  sizeBytes: number | null;
  /** When the bundle and its archive are deleted (ISO-8601). */
  expiresAt: string;
  /** The replica running (or queueing) the collection, and until when it holds it (epoch ms). */
  owner: string | null;
  leaseUntil: number | null;
}

/** Where a bundle keeps its lease (the field names and format bundles have always been stored with). */
export const bundleLease = leaseFields<LogBundle>({ owner: 'owner', until: 'leaseUntil', time: 'epoch-ms' });

/** A domain failure of a request, returned as a userError. */
export interface Problem {
  code: string;
  message: string;
  field: string[];
}

/** The parts asked for: an omitted (or null) choice counts as selected, as in the schema's defaults. */
export function selectedParts(input: {
  kubeSystem?: boolean | null;
  namespaceLogs?: boolean | null;
  nodeLogs?: boolean | null;
}): LogParts {
  return {
    kubeSystem: input.kubeSystem ?? true,
    namespaceLogs: input.namespaceLogs ?? true,
    nodeLogs: input.nodeLogs ?? true,
  };
}

/** Problems of the parts selection. */
export function validateParts(parts: LogParts): Problem[] {
  if (!parts.kubeSystem && !parts.namespaceLogs && !parts.nodeLogs) {
    return [
      {
        code: 'NO_PART_SELECTED',
        message: 'select at least one of kubeSystem, namespaceLogs and nodeLogs',
        field: ['input'],
      },
    ];
  }
  return [];
}

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * The archive's file name: the cluster's name (reduced to letters, digits, `-`, `_` and `.`) and
 * the time of the request in UTC, e.g. `web-prod-logs-20260523-101530.zip`.
 */
export function archiveFileName(clusterName: string, requestedAt: Date): string {
  const name =
    clusterName
      .replace(/[^A-Za-z0-9_.-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 80) || 'cluster';
  const t = requestedAt;
  const stamp =
    `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}-` +
    `${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}`;
  return `${name}-logs-${stamp}.zip`;
}

/** The folder every entry of the archive lies in: its file name without `.zip`. */
export const archiveRoot = (fileName: string) => fileName.replace(/\.zip$/, '');
