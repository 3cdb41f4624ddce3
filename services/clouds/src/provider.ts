/**
 * The one interface every cloud adapter implements (ARCHITECTURE.md, Orchestration): what a
 * cloud offers (regions, instance types, quota), a network for a cluster, images in a region,
 * and machines. Its callers are the orchestrator, which reconciles clusters one idempotent step
 * at a time, and the images service.
 *
 * Rules every adapter keeps:
 * - every call is safe to repeat: creates take a client token or derive names from the ids
 *   they are given, so a caller that crashed mid-step and retries makes nothing twice;
 * - every failure is a {@link CloudError} with a classified `code` and the cloud's own message;
 * - describing or deleting something that does not exist is not an error (`null`, or nothing).
 */

/** Which cloud a provider talks to; the names of contract.graphql's `CloudType`. */
export const CloudTypes = ['AWS', 'AZURE', 'LOCAL'] as const;
export type CloudType = (typeof CloudTypes)[number];

/** The role of a node; the names of contract.graphql's `NodeRole`. */
export const NodeRoles = ['CONTROL_PLANE', 'WORKER'] as const;
export type NodeRole = (typeof NodeRoles)[number];

/** Free-form key/value labels, as the clouds store them. */
export type Tags = Record<string, string>;

// ------------------------------------------------------------------ what a cloud offers

/** A region and its availability zones (`local-1` with `local-1a`, `local-1b`, `local-1c`). */
export interface Region {
  name: string;
  zones: string[];
}

/** A machine size (`t3.medium`: 2 vCPUs, 4096 MiB). */
export interface InstanceType {
  name: string;
  vcpus: number;
  memoryMiB: number;
}

/** The regional vCPU quota and how much of it running and pending machines use. */
export interface Quota {
  region: string;
  vcpuLimit: number;
  vcpuUsed: number;
}

// ------------------------------------------------------------------ networks

export interface EnsureNetworkInput {
  clusterId: string;
  region: string;
  /** Zones that will hold machines. Zonal clouds (AWS, local) get one subnet per zone and role. */
  zones: readonly string[];
  /** Address range of the cluster network; a /16. @default '10.0.0.0/16' */
  cidr?: string;
  /** Who may reach the Kubernetes API (TCP 6443) on control-plane nodes. @default ['0.0.0.0/0'] */
  apiAllowedCidrs?: readonly string[];
  /** Who may reach NodePort services (TCP 30000-32767) on workers. @default [] (nobody outside the cluster) */
  nodePortAllowedCidrs?: readonly string[];
}

/** A subnet of one role, in one zone (`zone` is null on clouds whose subnets span zones). */
export interface Subnet {
  id: string;
  zone: string | null;
  cidr: string;
}

/**
 * One network domain: the control-plane nodes, or the workers. Each has its own subnets and
 * its own security group (AWS, local) or network security group (Azure), so that the two can
 * be told apart by firewall rules and neither is reachable from the other beyond what
 * Kubernetes needs.
 */
export interface NetworkDomain {
  role: NodeRole;
  securityGroupId: string;
  subnets: Subnet[];
}

/** What `ensureNetwork` made or found: plain data the orchestrator may store and pass back. */
export interface ClusterNetwork {
  clusterId: string;
  region: string;
  /** VPC id (AWS, local) or virtual network id (Azure). */
  networkId: string;
  cidr: string;
  controlPlane: NetworkDomain;
  workers: NetworkDomain;
}

// ------------------------------------------------------------------ images

export const ImageStatuses = ['pending', 'available', 'failed'] as const;
export type ImageStatus = (typeof ImageStatuses)[number];

/** A machine image as it exists in one region (an AMI; an Azure gallery image version there). */
export interface CloudImage {
  /** What `createMachine` takes as `imageId` in this region. */
  id: string;
  name: string;
  region: string;
  status: ImageStatus;
  /** Why it failed, in the cloud's words, when `status` is `failed`. */
  statusMessage?: string;
  description?: string;
  tags: Tags;
  /** ISO-8601, when the cloud reports it. */
  createdAt?: string;
  /** The account that owns it: `self` images can be deleted, published ones cannot. */
  ownerId?: string;
}

export interface CopyImageInput {
  sourceRegion: string;
  sourceImageId: string;
  /** The target region. */
  region: string;
  name: string;
  description?: string;
  tags?: Tags;
  /** Makes a retried copy return the first copy (EC2 CopyImage ClientToken). */
  clientToken: string;
}

export interface CreateImageFromMachineInput {
  region: string;
  machineId: string;
  /** Unique per account and region; a retried create with the same name returns the first image. */
  name: string;
  description?: string;
  tags?: Tags;
}

// ------------------------------------------------------------------ machines

export const MachineStates = [
  'pending',
  'running',
  'stopping',
  'stopped',
  'terminating',
  'terminated',
  'failed',
] as const;
export type MachineState = (typeof MachineStates)[number];

export interface CreateMachineInput {
  /**
   * The idempotency key of this create: a retried create with the same token and the same
   * input returns the machine the first one made, never a second one, even after that machine
   * was terminated (EC2 keeps tokens at least 24 hours after termination). The same token with
   * different input fails with INVALID_CONFIGURATION (`IdempotentParameterMismatch`).
   */
  clientToken: string;
  clusterId: string;
  /** Node pool name; tagged on the machine. */
  pool: string;
  /** The machine's name in the cluster (e.g. `workers-1-abc12`); tagged on the machine. */
  machineName: string;
  role: NodeRole;
  region: string;
  zone: string;
  instanceType: string;
  imageId: string;
  /**
   * The cluster's network, as `ensureNetwork` returned it: the machine joins the subnet of its
   * zone and role and that role's security group. Without it the cloud's default network is
   * used (a default VPC), e.g. for image builders.
   */
  network?: ClusterNetwork;
  /** cloud-init user data, plain text (adapters encode it). */
  userData?: string;
  /** Extra tags, on top of those naming cluster, pool, machine and role. */
  tags?: Tags;
}

export interface Machine {
  id: string;
  /** The `machineName` it was created with. */
  name: string;
  clusterId: string;
  pool: string;
  role: NodeRole;
  region: string;
  zone: string;
  instanceType: string;
  imageId: string;
  state: MachineState;
  /** Why it is in its state, in the cloud's words (e.g. a termination reason), when given. */
  stateReason?: string;
  privateIp?: string;
  /** ISO-8601. */
  launchedAt?: string;
  tags: Tags;
}

export interface DescribeMachinesInput {
  clusterId: string;
  region: string;
  /** Only this pool's machines. */
  pool?: string;
  /** Terminated machines linger for a while in most clouds; they are left out unless asked for. @default false */
  includeTerminated?: boolean;
}

// ------------------------------------------------------------------ the provider

export interface CloudProvider {
  readonly type: CloudType;

  /** Regions this account may use, each with its zones. */
  regions(): Promise<Region[]>;
  /** Machine sizes offered in a region. */
  instanceTypes(region: string): Promise<InstanceType[]>;
  /**
   * The regional vCPU quota, or null where the cloud does not report it through the API this
   * adapter speaks (AWS reports it through Service Quotas, not EC2).
   */
  quota(region: string): Promise<Quota | null>;

  /**
   * Makes (or finds, by names and tags derived from the cluster id) the cluster's network: one
   * network, and for control-plane nodes and for workers each their own subnets and security
   * group. Safe to call again at any time; it converges and returns the same ids.
   */
  ensureNetwork(input: EnsureNetworkInput): Promise<ClusterNetwork>;
  /**
   * Deletes what `ensureNetwork` made. Nothing to delete is not an error. Fails (TRANSIENT) while
   * machines still use it.
   */
  deleteNetwork(input: { clusterId: string; region: string }): Promise<void>;

  /** An image in a region by id or by name; null when the region has no such image. */
  describeImage(region: string, idOrName: string): Promise<CloudImage | null>;
  /** Images in a region carrying every one of the tags. */
  findImages(region: string, tags: Tags): Promise<CloudImage[]>;
  /** Copies an image into another region; poll `describeImage` until it is `available`. */
  copyImage(input: CopyImageInput): Promise<CloudImage>;
  /** Captures a machine's disk as a new image; poll `describeImage` until it is `available`. */
  createImageFromMachine(input: CreateImageFromMachineInput): Promise<CloudImage>;
  /** Deletes an image in a region. A missing image is not an error. */
  deleteImage(region: string, imageId: string): Promise<void>;

  /** Launches one machine, idempotently by `clientToken` (see {@link CreateMachineInput}). */
  createMachine(input: CreateMachineInput): Promise<Machine>;
  /** The machines tagged with a cluster id. */
  describeMachines(input: DescribeMachinesInput): Promise<Machine[]>;
  /** One machine by id; null when the cloud does not know it. */
  describeMachine(region: string, machineId: string): Promise<Machine | null>;
  /** Terminates a machine. A missing or already terminated machine is not an error. */
  deleteMachine(region: string, machineId: string): Promise<void>;

  /** Releases clients and sockets. */
  close(): Promise<void>;
}
