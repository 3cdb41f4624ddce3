import {
  AuthorizeSecurityGroupIngressCommand,
  CopyImageCommand,
  CreateImageCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DeleteSecurityGroupCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DeregisterImageCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstanceTypesCommand,
  DescribeInstancesCommand,
  DescribeRegionsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  RevokeSecurityGroupIngressCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Filter,
  type Image,
  type Instance,
  type IpPermission,
  type SecurityGroup,
  type Subnet as Ec2Subnet,
  type Tag,
  type Vpc,
} from '@aws-sdk/client-ec2';
import { CloudError } from '../errors.js';
import { DEFAULT_NETWORK_CIDR, ingressRules, networkNames, planSubnets, type IngressRule } from '../network-plan.js';
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
  ImageStatus,
  InstanceType,
  Machine,
  MachineState,
  NetworkDomain,
  NodeRole,
  Quota,
  Region,
  Tags,
} from '../provider.js';
import { NodeRoles } from '../provider.js';
import { ec2ClientToken, machineTags, TagKeys } from '../tags.js';
import { ec2ErrorCode, toCloudError } from './aws-errors.js';

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
}

const liveStates = ['pending', 'running', 'stopping', 'stopped', 'shutting-down'];

const stateOf: Record<string, MachineState> = {
  pending: 'pending',
  running: 'running',
  stopping: 'stopping',
  stopped: 'stopped',
  'shutting-down': 'terminating',
  terminated: 'terminated',
};

const imageStatusOf: Record<string, ImageStatus> = {
  pending: 'pending',
  transient: 'pending',
  available: 'available',
  failed: 'failed',
  invalid: 'failed',
  error: 'failed',
  deregistered: 'failed',
  disabled: 'failed',
};

function toTags(tags: Tags): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function fromTags(tags: Tag[] | undefined): Tags {
  return Object.fromEntries((tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
}

function tagFilters(tags: Tags): Filter[] {
  return Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
}

function roleOf(value: string | undefined): NodeRole {
  return (NodeRoles as readonly string[]).includes(value ?? '') ? (value as NodeRole) : 'WORKER';
}

const AMI_ID = /^ami-[0-9a-zA-Z]+$/;

/**
 * The AWS adapter, over EC2 alone. Machines are RunInstances calls with a ClientToken and
 * TagSpecifications naming cluster, pool, machine and role; a cluster network is a VPC tagged
 * with the cluster id, with a control-plane and a worker security group and, per zone, a
 * control-plane and a worker subnet.
 *
 * Pointed at the local cloud (`endpoint`, any credentials), this same code drives the local
 * cloud: see `createLocalProvider`.
 */
export function createAwsProvider(options: AwsProviderOptions): CloudProvider {
  return new AwsProvider(options);
}

class AwsProvider implements CloudProvider {
  readonly type: CloudType;
  private readonly clients = new Map<string, EC2Client>();
  private readonly imageOwners: string[];

  constructor(private readonly options: AwsProviderOptions) {
    this.type = options.cloud ?? 'AWS';
    this.imageOwners = [...(options.imageOwners ?? ['self'])];
  }

  private client(region: string): EC2Client {
    let client = this.clients.get(region);
    if (!client) {
      client = new EC2Client({
        region,
        endpoint: this.options.endpoint,
        credentials: this.options.credentials,
        maxAttempts: this.options.maxAttempts ?? 5,
        retryMode: this.options.retryMode ?? 'adaptive',
        requestHandler: { requestTimeout: this.options.requestTimeoutMs ?? 30_000, connectionTimeout: 5_000 },
      });
      this.clients.set(region, client);
    }
    return client;
  }

  /** Runs one EC2 call and classifies what it throws. */
  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toCloudError(error, operation, this.type);
    }
  }

  private invalid(operation: string, message: string): CloudError {
    return new CloudError({ code: 'INVALID_CONFIGURATION', message, cloud: this.type, operation });
  }

  // ---------------------------------------------------------------- offerings

  async regions(): Promise<Region[]> {
    return this.call('regions', async () => {
      const { Regions = [] } = await this.client(this.options.region).send(new DescribeRegionsCommand({}));
      const names = Regions.map((r) => r.RegionName).filter((n): n is string => !!n).sort();
      return Promise.all(
        names.map(async (name) => {
          const { AvailabilityZones = [] } = await this.client(name).send(
            new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'zone-type', Values: ['availability-zone'] }] }),
          );
          const zones = AvailabilityZones.filter((z) => !z.State || z.State === 'available')
            .map((z) => z.ZoneName)
            .filter((z): z is string => !!z)
            .sort();
          return { name, zones };
        }),
      );
    });
  }

  async instanceTypes(region: string): Promise<InstanceType[]> {
    return this.call('instanceTypes', async () => {
      const types: InstanceType[] = [];
      let NextToken: string | undefined;
      do {
        const page = await this.client(region).send(new DescribeInstanceTypesCommand({ MaxResults: 100, NextToken }));
        for (const t of page.InstanceTypes ?? []) {
          if (t.InstanceType && t.VCpuInfo?.DefaultVCpus && t.MemoryInfo?.SizeInMiB) {
            types.push({ name: t.InstanceType, vcpus: t.VCpuInfo.DefaultVCpus, memoryMiB: t.MemoryInfo.SizeInMiB });
          }
        }
        NextToken = page.NextToken;
      } while (NextToken);
      return types.sort((a, b) => a.vcpus - b.vcpus || a.memoryMiB - b.memoryMiB || a.name.localeCompare(b.name));
    });
  }

  async quota(region: string): Promise<Quota | null> {
    if (!this.options.quotaSource) return null;
    return this.call('quota', () => this.options.quotaSource!(region));
  }

  // ---------------------------------------------------------------- networks

  async ensureNetwork(input: EnsureNetworkInput): Promise<ClusterNetwork> {
    const op = 'ensureNetwork';
    const cidr = input.cidr ?? DEFAULT_NETWORK_CIDR;
    const plan = planSubnets(cidr, input.zones, this.type);
    const names = networkNames(input.clusterId);
    const ec2 = this.client(input.region);

    return this.call(op, async () => {
      const vpc = await this.ensureVpc(ec2, input.clusterId, cidr, names.network);
      const vpcId = vpc.VpcId!;
      if (vpc.CidrBlock && vpc.CidrBlock !== cidr) {
        throw this.invalid(op, `the network of cluster ${input.clusterId} exists with CIDR ${vpc.CidrBlock}, not ${cidr}`);
      }

      const groups = {} as Record<NodeRole, SecurityGroup>;
      for (const role of NodeRoles) {
        groups[role] = await this.ensureSecurityGroup(ec2, vpcId, input.clusterId, role, names.securityGroup(role));
      }
      for (const role of NodeRoles) {
        await this.ensureIngress(ec2, groups[role], ingressRules(role, input), {
          CONTROL_PLANE: groups.CONTROL_PLANE.GroupId!,
          WORKER: groups.WORKER.GroupId!,
        });
      }

      const existing = await this.describeSubnets(ec2, vpcId);
      const domains: Record<NodeRole, NetworkDomain> = {
        CONTROL_PLANE: { role: 'CONTROL_PLANE', securityGroupId: groups.CONTROL_PLANE.GroupId!, subnets: [] },
        WORKER: { role: 'WORKER', securityGroupId: groups.WORKER.GroupId!, subnets: [] },
      };
      for (const want of plan) {
        let subnet = existing.find((s) => s.CidrBlock === want.cidr);
        if (subnet && subnet.AvailabilityZone !== want.zone) {
          throw this.invalid(op, `subnet ${subnet.SubnetId} of cluster ${input.clusterId} (${want.cidr}) is in ${subnet.AvailabilityZone}, not ${want.zone}`);
        }
        if (!subnet) {
          const tags = { Name: names.subnet(want.role, want.zone), [TagKeys.cluster]: input.clusterId, [TagKeys.network]: want.role, [TagKeys.zone]: want.zone! };
          try {
            const created = await ec2.send(
              new CreateSubnetCommand({
                VpcId: vpcId,
                CidrBlock: want.cidr,
                AvailabilityZone: want.zone!,
                TagSpecifications: [{ ResourceType: 'subnet', Tags: toTags(tags) }],
              }),
            );
            subnet = created.Subnet!;
          } catch (error) {
            // Another replica made it first: the CIDR is taken by the subnet we want.
            if (ec2ErrorCode(error) !== 'InvalidSubnet.Conflict') throw error;
            subnet = (await this.describeSubnets(ec2, vpcId)).find((s) => s.CidrBlock === want.cidr);
            if (!subnet) throw error;
          }
        }
        domains[want.role].subnets.push({ id: subnet.SubnetId!, zone: want.zone, cidr: want.cidr });
      }

      return { clusterId: input.clusterId, region: input.region, networkId: vpcId, cidr, controlPlane: domains.CONTROL_PLANE, workers: domains.WORKER };
    });
  }

  private async findVpcs(ec2: EC2Client, clusterId: string): Promise<Vpc[]> {
    const { Vpcs = [] } = await ec2.send(
      new DescribeVpcsCommand({ Filters: tagFilters({ [TagKeys.cluster]: clusterId, [TagKeys.network]: 'network' }) }),
    );
    // Oldest first by id is not defined by EC2; any fixed order makes replicas agree.
    return Vpcs.sort((a, b) => (a.VpcId! < b.VpcId! ? -1 : 1));
  }

  /**
   * CreateVpc takes no client token. Two replicas racing can both create one; both then see
   * two and keep the first by id, and the loser deletes its own, so they converge on one.
   */
  private async ensureVpc(ec2: EC2Client, clusterId: string, cidr: string, name: string): Promise<Vpc> {
    const found = await this.findVpcs(ec2, clusterId);
    if (found[0]) return found[0];
    const { Vpc: created } = await ec2.send(
      new CreateVpcCommand({
        CidrBlock: cidr,
        TagSpecifications: [{ ResourceType: 'vpc', Tags: toTags({ Name: name, [TagKeys.cluster]: clusterId, [TagKeys.network]: 'network' }) }],
      }),
    );
    const all = await this.findVpcs(ec2, clusterId);
    const winner = all[0] ?? created!;
    if (winner.VpcId !== created!.VpcId) {
      await ec2.send(new DeleteVpcCommand({ VpcId: created!.VpcId! })).catch(() => undefined);
    }
    return winner;
  }

  private async ensureSecurityGroup(ec2: EC2Client, vpcId: string, clusterId: string, role: NodeRole, name: string): Promise<SecurityGroup> {
    const find = async () =>
      (
        await ec2.send(
          new DescribeSecurityGroupsCommand({
            Filters: [
              { Name: 'vpc-id', Values: [vpcId] },
              { Name: 'group-name', Values: [name] },
            ],
          }),
        )
      ).SecurityGroups?.[0];
    const found = await find();
    if (found) return found;
    try {
      await ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: name,
          Description: `Fleetgraph cluster ${clusterId}: ${role === 'CONTROL_PLANE' ? 'control-plane' : 'worker'} nodes`,
          VpcId: vpcId,
          TagSpecifications: [
            { ResourceType: 'security-group', Tags: toTags({ Name: name, [TagKeys.cluster]: clusterId, [TagKeys.network]: role }) },
          ],
        }),
      );
    } catch (error) {
      if (ec2ErrorCode(error) !== 'InvalidGroup.Duplicate') throw error;
    }
    const group = await find();
    if (!group) throw new CloudError({ code: 'TRANSIENT', message: `security group ${name} was created but is not visible yet`, cloud: this.type });
    return group;
  }

  /**
   * Converges a group's inbound rules on the wanted ones: adds those it lacks and revokes those
   * no longer wanted (a narrowed API allow-list must close). AuthorizeSecurityGroupIngress is
   * all-or-nothing, so only missing rules are sent.
   */
  private async ensureIngress(ec2: EC2Client, group: SecurityGroup, rules: IngressRule[], groupIds: Record<NodeRole, string>): Promise<void> {
    const wanted = rules.map((rule) => toPermission(rule, groupIds));
    const have = (group.IpPermissions ?? []).flatMap(splitPermission);
    const missing = wanted.filter((want) => !have.some((h) => covers(h, want)));
    const unwanted = have.filter((h) => !wanted.some((want) => covers(want, h)));
    if (unwanted.length > 0) {
      await ignoring(['InvalidPermission.NotFound'], () => ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: group.GroupId!, IpPermissions: unwanted })));
    }
    if (missing.length === 0) return;
    try {
      await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: group.GroupId!, IpPermissions: missing }));
    } catch (error) {
      if (ec2ErrorCode(error) !== 'InvalidPermission.Duplicate') throw error;
    }
  }

  private async describeSubnets(ec2: EC2Client, vpcId: string): Promise<Ec2Subnet[]> {
    const { Subnets = [] } = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }));
    return Subnets;
  }

  async deleteNetwork(input: { clusterId: string; region: string }): Promise<void> {
    const ec2 = this.client(input.region);
    await this.call('deleteNetwork', async () => {
      for (const vpc of await this.findVpcs(ec2, input.clusterId)) {
        const vpcId = vpc.VpcId!;
        const { SecurityGroups = [] } = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }));
        const ours = SecurityGroups.filter((g) => g.GroupName !== 'default');
        // Groups that name each other in rules cannot be deleted until those rules are gone.
        for (const group of ours) {
          const referencing = (group.IpPermissions ?? []).filter((p) => (p.UserIdGroupPairs ?? []).length > 0);
          if (referencing.length > 0) {
            await ignoring(['InvalidPermission.NotFound', 'InvalidGroup.NotFound'], () =>
              ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: group.GroupId!, IpPermissions: referencing })),
            );
          }
        }
        for (const subnet of await this.describeSubnets(ec2, vpcId)) {
          await ignoring(['InvalidSubnetID.NotFound'], () => ec2.send(new DeleteSubnetCommand({ SubnetId: subnet.SubnetId! })));
        }
        for (const group of ours) {
          await ignoring(['InvalidGroup.NotFound'], () => ec2.send(new DeleteSecurityGroupCommand({ GroupId: group.GroupId! })));
        }
        await ignoring(['InvalidVpcID.NotFound'], () => ec2.send(new DeleteVpcCommand({ VpcId: vpcId })));
      }
    });
  }

  // ---------------------------------------------------------------- images

  private toImage(region: string, image: Image): CloudImage {
    return {
      id: image.ImageId!,
      name: image.Name ?? image.ImageId!,
      region,
      status: imageStatusOf[image.State ?? 'pending'] ?? 'pending',
      ...(image.StateReason?.Message && image.State !== 'available' ? { statusMessage: image.StateReason.Message } : {}),
      ...(image.Description ? { description: image.Description } : {}),
      tags: fromTags(image.Tags),
      ...(image.CreationDate ? { createdAt: image.CreationDate } : {}),
      ...(image.OwnerId ? { ownerId: image.OwnerId } : {}),
    };
  }

  async describeImage(region: string, idOrName: string): Promise<CloudImage | null> {
    return this.call('describeImage', async () => {
      const ec2 = this.client(region);
      if (AMI_ID.test(idOrName)) {
        try {
          const { Images = [] } = await ec2.send(new DescribeImagesCommand({ ImageIds: [idOrName] }));
          return Images[0] ? this.toImage(region, Images[0]) : null;
        } catch (error) {
          if (ec2ErrorCode(error)?.startsWith('InvalidAMIID.')) return null;
          throw error;
        }
      }
      const { Images = [] } = await ec2.send(
        new DescribeImagesCommand({ Owners: this.imageOwners, Filters: [{ Name: 'name', Values: [idOrName] }] }),
      );
      const newest = Images.sort((a, b) => (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''))[0];
      return newest ? this.toImage(region, newest) : null;
    });
  }

  async findImages(region: string, tags: Tags): Promise<CloudImage[]> {
    return this.call('findImages', async () => {
      const { Images = [] } = await this.client(region).send(new DescribeImagesCommand({ Owners: this.imageOwners, Filters: tagFilters(tags) }));
      return Images.map((image) => this.toImage(region, image));
    });
  }

  async copyImage(input: CopyImageInput): Promise<CloudImage> {
    return this.call('copyImage', async () => {
      const tags = input.tags ?? {};
      const { ImageId } = await this.client(input.region).send(
        new CopyImageCommand({
          SourceRegion: input.sourceRegion,
          SourceImageId: input.sourceImageId,
          Name: input.name,
          Description: input.description,
          ClientToken: ec2ClientToken(input.clientToken),
          ...(Object.keys(tags).length > 0 ? { TagSpecifications: [{ ResourceType: 'image', Tags: toTags(tags) }] } : {}),
        }),
      );
      // EC2 is eventually consistent: a fresh AMI may not be visible to DescribeImages yet.
      return (await this.describeImage(input.region, ImageId!)) ?? { id: ImageId!, name: input.name, region: input.region, status: 'pending', tags };
    });
  }

  async createImageFromMachine(input: CreateImageFromMachineInput): Promise<CloudImage> {
    return this.call('createImageFromMachine', async () => {
      const tags = input.tags ?? {};
      let imageId: string;
      try {
        const created = await this.client(input.region).send(
          new CreateImageCommand({
            InstanceId: input.machineId,
            Name: input.name,
            Description: input.description,
            ...(Object.keys(tags).length > 0 ? { TagSpecifications: [{ ResourceType: 'image', Tags: toTags(tags) }] } : {}),
          }),
        );
        imageId = created.ImageId!;
      } catch (error) {
        // CreateImage takes no client token; AMI names are unique per account and region, so a
        // retry finds the image the first call made.
        if (ec2ErrorCode(error) !== 'InvalidAMIName.Duplicate') throw error;
        const { Images = [] } = await this.client(input.region).send(
          new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: [input.name] }] }),
        );
        if (!Images[0]) throw error;
        return this.toImage(input.region, Images[0]);
      }
      return (await this.describeImage(input.region, imageId)) ?? { id: imageId, name: input.name, region: input.region, status: 'pending', tags };
    });
  }

  async deleteImage(region: string, imageId: string): Promise<void> {
    await this.call('deleteImage', () =>
      ignoring(['InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable'], () =>
        this.client(region).send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true })),
      ),
    );
  }

  // ---------------------------------------------------------------- machines

  private toMachine(region: string, instance: Instance): Machine {
    const tags = fromTags(instance.Tags);
    return {
      id: instance.InstanceId!,
      name: tags[TagKeys.machine] ?? tags.Name ?? instance.InstanceId!,
      clusterId: tags[TagKeys.cluster] ?? '',
      pool: tags[TagKeys.pool] ?? '',
      role: roleOf(tags[TagKeys.role]),
      region,
      zone: instance.Placement?.AvailabilityZone ?? '',
      instanceType: instance.InstanceType ?? '',
      imageId: instance.ImageId ?? '',
      state: stateOf[instance.State?.Name ?? 'pending'] ?? 'pending',
      ...(instance.StateReason?.Message ? { stateReason: instance.StateReason.Message } : {}),
      ...(instance.PrivateIpAddress ? { privateIp: instance.PrivateIpAddress } : {}),
      ...(instance.LaunchTime ? { launchedAt: new Date(instance.LaunchTime).toISOString() } : {}),
      tags,
    };
  }

  async createMachine(input: CreateMachineInput): Promise<Machine> {
    const op = 'createMachine';
    let placement: { SubnetId: string; SecurityGroupIds: string[] } | { Placement: { AvailabilityZone: string } };
    if (input.network) {
      const domain = input.role === 'CONTROL_PLANE' ? input.network.controlPlane : input.network.workers;
      const subnet = domain.subnets.find((s) => s.zone === input.zone);
      if (!subnet) throw this.invalid(op, `the network of cluster ${input.network.clusterId} has no ${input.role} subnet in zone ${input.zone}`);
      placement = { SubnetId: subnet.id, SecurityGroupIds: [domain.securityGroupId] };
    } else {
      placement = { Placement: { AvailabilityZone: input.zone } };
    }
    const tags = toTags({ ...input.tags, ...machineTags(input), Name: input.machineName });
    return this.call(op, async () => {
      const { Instances = [] } = await this.client(input.region).send(
        new RunInstancesCommand({
          ClientToken: ec2ClientToken(input.clientToken),
          ImageId: input.imageId,
          InstanceType: input.instanceType as never,
          MinCount: 1,
          MaxCount: 1,
          ...placement,
          ...(input.userData ? { UserData: Buffer.from(input.userData, 'utf8').toString('base64') } : {}),
          MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
          TagSpecifications: [
            { ResourceType: 'instance', Tags: tags },
            { ResourceType: 'volume', Tags: tags },
          ],
        }),
      );
      if (!Instances[0]) throw new CloudError({ code: 'TRANSIENT', message: 'RunInstances returned no instance', cloud: this.type, operation: op });
      return this.toMachine(input.region, Instances[0]);
    });
  }

  async describeMachines(input: DescribeMachinesInput): Promise<Machine[]> {
    return this.call('describeMachines', async () => {
      const filters: Filter[] = tagFilters({ [TagKeys.cluster]: input.clusterId, ...(input.pool ? { [TagKeys.pool]: input.pool } : {}) });
      filters.push({ Name: 'instance-state-name', Values: input.includeTerminated ? [...liveStates, 'terminated'] : liveStates });
      const machines: Machine[] = [];
      let NextToken: string | undefined;
      do {
        const page = await this.client(input.region).send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 1000, NextToken }));
        for (const reservation of page.Reservations ?? []) {
          for (const instance of reservation.Instances ?? []) machines.push(this.toMachine(input.region, instance));
        }
        NextToken = page.NextToken;
      } while (NextToken);
      return machines.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    });
  }

  async describeMachine(region: string, machineId: string): Promise<Machine | null> {
    return this.call('describeMachine', async () => {
      try {
        const { Reservations = [] } = await this.client(region).send(new DescribeInstancesCommand({ InstanceIds: [machineId] }));
        const instance = Reservations.flatMap((r) => r.Instances ?? [])[0];
        return instance ? this.toMachine(region, instance) : null;
      } catch (error) {
        if (ec2ErrorCode(error) === 'InvalidInstanceID.NotFound') return null;
        throw error;
      }
    });
  }

  async deleteMachine(region: string, machineId: string): Promise<void> {
    await this.call('deleteMachine', () =>
      ignoring(['InvalidInstanceID.NotFound'], () => this.client(region).send(new TerminateInstancesCommand({ InstanceIds: [machineId] }))),
    );
  }

  async close(): Promise<void> {
    for (const client of this.clients.values()) client.destroy();
    this.clients.clear();
  }
}

/** Runs an EC2 call, treating the given error codes as "already done". */
async function ignoring(codes: string[], fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    const code = ec2ErrorCode(error);
    if (!code || !codes.includes(code)) throw error;
  }
}

function toPermission(rule: IngressRule, groupIds: Record<NodeRole, string>): IpPermission {
  const ports = rule.protocol === 'all' ? {} : { FromPort: rule.fromPort, ToPort: rule.toPort };
  const source =
    'role' in rule.source
      ? { UserIdGroupPairs: [{ GroupId: groupIds[rule.source.role], Description: rule.description }] }
      : { IpRanges: [{ CidrIp: rule.source.cidr, Description: rule.description }] };
  return { IpProtocol: rule.protocol === 'all' ? '-1' : rule.protocol, ...ports, ...source };
}

/** One permission per source (group or CIDR), as rules are compared. */
function splitPermission(p: IpPermission): IpPermission[] {
  const base = { IpProtocol: p.IpProtocol, ...(p.IpProtocol === '-1' ? {} : { FromPort: p.FromPort, ToPort: p.ToPort }) };
  return [
    ...(p.UserIdGroupPairs ?? []).map((pair) => ({ ...base, UserIdGroupPairs: [{ GroupId: pair.GroupId }] })),
    ...(p.IpRanges ?? []).map((range) => ({ ...base, IpRanges: [{ CidrIp: range.CidrIp }] })),
  ];
}

/** True when an existing permission already lets in what `want` asks for. */
function covers(have: IpPermission, want: IpPermission): boolean {
  if (have.IpProtocol !== want.IpProtocol) return false;
  if (want.IpProtocol !== '-1' && (have.FromPort !== want.FromPort || have.ToPort !== want.ToPort)) return false;
  const groups = new Set((have.UserIdGroupPairs ?? []).map((p) => p.GroupId));
  const cidrs = new Set((have.IpRanges ?? []).map((r) => r.CidrIp));
  return (want.UserIdGroupPairs ?? []).every((p) => groups.has(p.GroupId)) && (want.IpRanges ?? []).every((r) => cidrs.has(r.CidrIp));
}
