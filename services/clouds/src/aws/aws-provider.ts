import type {
  CloudImage,
  CloudProvider,
  CloudType,
  ClusterNetwork,
  CopyImageInput,
  CreateImageFromMachineInput,
  CreateMachineInput,
  DescribeMachinesInput,
  EnsureNetworkInput,
  InstanceType,
  Machine,
  Quota,
  Region,
  Tags,
} from '../provider.js';
import { Ec2Context } from './ec2.js';
import { AwsImages } from './images.js';
import { AwsMachines } from './machines.js';
import { AwsNetworks } from './network.js';
import { AwsOfferings } from './offerings.js';

/** Static keys, or anything the SDK takes as `credentials` (a provider function). */
export type AwsCredentials =
  | { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  | (() => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>);

export interface AwsProviderOptions {
  /** The region used for account-wide calls (DescribeRegions). */
  region: string;
  /** @default the SDK's default chain (environment, profile, instance role) */
  credentials?: AwsCredentials;
  /** One endpoint for every region, e.g. a local EC2 fake (`http://127.0.0.1:4566`). */
  endpoint?: string;
  /** Attempts per call, first included; the SDK backs off between them. @default 5 */
  maxAttempts?: number;
  /**
   * `adaptive` adds a client-side rate limiter that slows down after throttling, which suits a
   * reconciler that calls the same API for many clusters. @default 'adaptive'
   */
  retryMode?: 'standard' | 'adaptive';
  /** Socket timeout per request. @default 30_000 */
  requestTimeoutMs?: number;
  /** Owners whose images `describeImage` (by name) and `findImages` search. @default ['self'] */
  imageOwners?: readonly string[];
  /** EC2 does not report vCPU quota (Service Quotas does): plug a source in here. @default none: `quota()` is null */
  quotaSource?: (region: string) => Promise<Quota | null>;
  /** The cloud named in errors and `type`. @default 'AWS' */
  cloud?: CloudType;
  /**
   * How long a describe of a cluster's machines (or a lookup of its VPC) waits for those of other
   * clusters in the same region, to be made as one EC2 call with theirs (ms). 0 makes each alone.
   * @default 5
   */
  batchWindowMs?: number;
}

/**
 * The AWS adapter, over EC2 alone. Machines are RunInstances calls with a ClientToken and
 * TagSpecifications naming cluster, pool, machine and role; a cluster network is a VPC tagged
 * with the cluster id, with a control-plane and a worker security group and, per zone, a
 * control-plane and a worker subnet.
 *
 * Pointed at the local cloud (`endpoint`, any credentials), this same code drives the local
 * cloud: see `createLocalProvider`.
 *
 * It is made of one part per resource, over one set of EC2 clients (`ec2.ts`): offerings
 * (`offerings.ts`), networks (`network.ts`), images (`images.ts`) and machines
 * (`machines.ts`); `mapping.ts` classifies EC2's errors and maps its tags and states.
 */
export function createAwsProvider(options: AwsProviderOptions): CloudProvider {
  return new AwsProvider(options);
}

class AwsProvider implements CloudProvider {
  readonly type: CloudType;
  private readonly ec2: Ec2Context;
  private readonly offerings: AwsOfferings;
  private readonly networks: AwsNetworks;
  private readonly images: AwsImages;
  private readonly machines: AwsMachines;

  constructor(options: AwsProviderOptions) {
    this.ec2 = new Ec2Context(options);
    this.type = this.ec2.cloud;
    this.offerings = new AwsOfferings(this.ec2);
    this.networks = new AwsNetworks(this.ec2);
    this.images = new AwsImages(this.ec2);
    this.machines = new AwsMachines(this.ec2);
  }

  regions(): Promise<Region[]> {
    return this.offerings.regions();
  }
  instanceTypes(region: string): Promise<InstanceType[]> {
    return this.offerings.instanceTypes(region);
  }
  quota(region: string): Promise<Quota | null> {
    return this.offerings.quota(region);
  }

  ensureNetwork(input: EnsureNetworkInput): Promise<ClusterNetwork> {
    return this.networks.ensureNetwork(input);
  }
  deleteNetwork(input: { clusterId: string; region: string }): Promise<void> {
    return this.networks.deleteNetwork(input);
  }

  describeImage(region: string, idOrName: string): Promise<CloudImage | null> {
    return this.images.describeImage(region, idOrName);
  }
  findImages(region: string, tags: Tags): Promise<CloudImage[]> {
    return this.images.findImages(region, tags);
  }
  copyImage(input: CopyImageInput): Promise<CloudImage> {
    return this.images.copyImage(input);
  }
  createImageFromMachine(input: CreateImageFromMachineInput): Promise<CloudImage> {
    return this.images.createImageFromMachine(input);
  }
  deleteImage(region: string, imageId: string): Promise<void> {
    return this.images.deleteImage(region, imageId);
  }

  createMachine(input: CreateMachineInput): Promise<Machine> {
    return this.machines.createMachine(input);
  }
  describeMachines(input: DescribeMachinesInput): Promise<Machine[]> {
    return this.machines.describeMachines(input);
  }
  describeMachine(region: string, machineId: string): Promise<Machine | null> {
    return this.machines.describeMachine(region, machineId);
  }
  deleteMachine(region: string, machineId: string): Promise<void> {
    return this.machines.deleteMachine(region, machineId);
  }

  async close(): Promise<void> {
    this.ec2.close();
  }
}
