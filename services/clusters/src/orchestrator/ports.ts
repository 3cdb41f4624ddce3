import type { CloudProvider } from '@fleetgraph/clouds';
import type { Lease, RequestDef } from '@fleetgraph/kit';
import type {
  FleetClusterMessage,
  applyPacks,
  ClusterEventMessage,
  ClusterSummary,
  clusterNodes,
  CloudType,
  ConditionsUpdateMessage,
  getProfile,
  resolveImage,
} from '@fleetgraph/schema';
import type { ClusterSpec } from '../domain/cluster.js';
import type { VersionedStatus } from '../domain/status.js';

/**
 * What the orchestrator needs from the world, implemented by the adapters: the status store
 * (adapters/cluster.repo.ts), the cloud providers (adapters/providers.ts) and the other services
 * it asks (adapters/cluster.requests.ts, over NATS). The orchestrator and its phases know no
 * adapter; tests give them in-memory ones (phases.test.ts).
 */

type RequestOf<D> = D extends RequestDef<infer Req, unknown> ? Req : never;
type ReplyOf<D> = D extends RequestDef<unknown, infer Res> ? Res : never;

/**
 * What a status write announces, in this order, together with the status (the repository puts
 * them in its outbox in the same store commit, and the relay publishes them).
 */
export type Announcement =
  | { type: 'event'; event: ClusterEventMessage }
  | { type: 'conditions'; update: ConditionsUpdateMessage }
  | { type: 'lifecycle'; cluster: ClusterSummary }
  | { type: 'fleet'; cluster: FleetClusterMessage };

/** Where clusters' definitions and statuses are kept, and how a replica claims one. */
export interface ClusterStatusStore {
  getSpec(id: string): Promise<{ spec: ClusterSpec } | null>;
  getStatus(id: string): Promise<VersionedStatus | null>;
  /** Statuses due for reconciliation that nobody holds, most overdue first. */
  due(now: Date, limit: number): Promise<VersionedStatus[]>;
  /** Due statuses whose lease ran out (its replica died or stalled), in lease order. */
  expiredLeases(now: Date, limit: number): Promise<VersionedStatus[]>;
  /** How many statuses are due and held by nobody: the queue waiting for a replica (metrics). */
  backlog?(now: Date): Promise<number>;
  /**
   * Claims a status for `owner` for `leaseMs`, unless another owner holds an unexpired lease: the
   * status at its new version, or null.
   */
  claim(status: VersionedStatus, owner: string, now: Date, leaseMs: number): Promise<VersionedStatus | null>;
  /** Extends a lease `lease.owner` holds to `lease.until`; nothing when it is another's. */
  renewLease(id: string, lease: Lease): Promise<void>;
  /**
   * Writes the status, and with it (all or nothing) what it announces. Only the lease holder
   * writes; `base` is the status as the writer last read or wrote it, which tells a user's wake
   * from a renewal. @returns the status saved (a wake's due time in it)
   * @throws StaleWriteError when the lease was lost to another replica.
   */
  saveStatus(
    status: VersionedStatus,
    owner: string,
    announcements?: readonly Announcement[],
    base?: VersionedStatus,
  ): Promise<VersionedStatus>;
}

/** The cloud provider of a cloud and region (`@fleetgraph/clouds`' interface). */
export interface CloudProviders {
  get(type: CloudType, region: string): CloudProvider;
}

/** A cluster profile: its layers (the profiles service). @throws BusError NOT_FOUND for an unknown one */
export interface ProfileLookup {
  profile(request: RequestOf<typeof getProfile>): Promise<ReplyOf<typeof getProfile>>;
}

/** The OS image of a profile in a cloud and region, resolved (copied, built) by the images service. */
export interface ImageLookup {
  resolveImage(request: RequestOf<typeof resolveImage>): Promise<ReplyOf<typeof resolveImage>>;
}

/** The cluster's agent, which installs packs. @throws BusError NO_RESPONDERS while no agent is connected */
export interface ClusterAgents {
  applyPacks(request: RequestOf<typeof applyPacks>): Promise<ReplyOf<typeof applyPacks>>;
}

/** The nodes a cluster's agent last reported, Ready or not (the health service). */
export interface NodeReadiness {
  nodes(request: RequestOf<typeof clusterNodes>): Promise<ReplyOf<typeof clusterNodes>>;
}

/** What a new machine boots: see bootstrap/user-data.ts. */
export interface NodeBootstrapRequest {
  spec: ClusterSpec;
  /** The machine's name in the cluster, and its pool and role. */
  machineName: string;
  pool: string;
  /** `init` for the node that runs kubeadm init; the others join `apiEndpoint`. */
  kind: 'init' | 'join-control-plane' | 'join-worker';
  kubernetesVersion: string;
  kubernetesPreinstalled: boolean;
  /** `host:port` of the API server; null for the init node. */
  apiEndpoint: string | null;
  /** The bootstrap token (plain) the nodes join with. */
  bootstrapToken: string;
}

/**
 * Makes machines' user data from the cluster's own secrets (its PKI, its agent's credentials),
 * sealed at rest: the phases keep the sealed form with the intent and open it for the cloud call.
 */
export interface NodeBootstrapper {
  userData(request: NodeBootstrapRequest): Promise<string>;
  /** A new bootstrap token: the plain one and its sealed form for the status. */
  newBootstrapToken(clusterId: string, now: Date): { token: string; sealed: string; expiresAt: string };
  /** Opens what `userData` or `newBootstrapToken` sealed for this cluster. */
  open(sealed: string, clusterId: string): string;
}

/** The other services the phases ask. Failures are BusErrors (code + message). */
export type ClusterRequests = ProfileLookup & ImageLookup & ClusterAgents & NodeReadiness;
