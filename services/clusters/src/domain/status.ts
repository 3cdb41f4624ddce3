import type { ClusterNetwork } from '@fleetgraph/clouds';
import { leaseFields } from '@fleetgraph/kit';
import type { ClusterPhase } from '@fleetgraph/schema';
import type { Condition } from './conditions.js';
import type { MachineIntent } from './machines.js';

/** What the orchestrator observed and decided; written by one replica at a time (the lease holder). */
export interface ClusterStatus {
  id: string;
  tenantId: string;
  phase: ClusterPhase;
  observedGeneration: number;
  conditions: Condition[];
  /** The image the cluster's machines boot from (artifact id in the region). */
  imageId: string | null;
  /** The profile the image was resolved for, so a profile update resolves a new one. */
  imageProfileId: string | null;
  /**
   * Whether the image has containerd, kubelet and kubeadm (else each node's user data installs
   * them). Missing in older statuses: true.
   */
  imageHasKubernetes?: boolean;
  /**
   * The control-plane node that runs `kubeadm init` (its machine name), chosen with its intent,
   * and the API server address every other node joins (`<its private address>:6443`, once the
   * cloud gave it one). Without a load balancer in front of the control plane, that node's
   * address is the endpoint: see the README (real clusters).
   */
  initMachine?: string | null;
  apiEndpoint?: string | null;
  /** The bootstrap token nodes join with (sealed) and when it expires (ISO-8601). */
  bootstrapToken?: { sealed: string; expiresAt: string } | null;
  network: ClusterNetwork | null;
  intents: MachineIntent[];
  /**
   * Machines whose removal has been announced by a MachineDeleted event (written before the
   * cloud is asked, so that a retried or taken-over removal is announced once); pruned to the
   * machines still observed. Missing in statuses stored before it existed.
   */
  announcedRemovals?: string[];
  /** The profile whose packs the agent confirmed installed. */
  addonsProfileId: string | null;
  /** Consecutive failed attempts, for backoff. */
  failures: number;
  /** Steps in a row that could not check a milestone already reached (see reconcileStep). */
  checkFailures?: number;
  /** When the cluster is next due; null when it needs nothing (DELETED). Indexed. */
  nextReconcileAt: string | null;
  /**
   * The trace context (W3C `traceparent`) of the request that last made the cluster due: its steps
   * continue that trace until the cluster converges (or is deleted); later steps (drift checks)
   * start traces of their own. Missing in statuses stored before it existed, and without tracing.
   */
  trace?: Record<string, string> | null;
  /** The replica reconciling it, and until when (ISO-8601; indexed): see `statusLease`. */
  leaseOwner: string | null;
  leaseUntil: string | null;
}

/** A status as stored, with the version its next write compares with. */
export type VersionedStatus = ClusterStatus & { version: number };

/** Where a status keeps its lease (the field names and format statuses have always been stored with). */
export const statusLease = leaseFields<ClusterStatus>({ owner: 'leaseOwner', until: 'leaseUntil', time: 'iso' });

/** The status of a new cluster: PENDING, due now. */
export function initialStatus(spec: { id: string; tenantId: string }, now: Date): ClusterStatus {
  return {
    id: spec.id,
    tenantId: spec.tenantId,
    phase: 'PENDING',
    observedGeneration: 0,
    conditions: [],
    imageId: null,
    imageProfileId: null,
    network: null,
    intents: [],
    addonsProfileId: null,
    failures: 0,
    nextReconcileAt: now.toISOString(),
    leaseOwner: null,
    leaseUntil: null,
  };
}
