import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DeleteSecurityGroupCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  RevokeSecurityGroupIngressCommand,
  type EC2Client,
  type IpPermission,
  type SecurityGroup,
  type Subnet as Ec2Subnet,
  type Vpc,
} from '@aws-sdk/client-ec2';
import { CloudError } from '../errors.js';
import { DEFAULT_NETWORK_CIDR, ingressRules, networkNames, planSubnets, type IngressRule } from '../network-plan.js';
import {
  NodeRoles,
  type ClusterNetwork,
  type EnsureNetworkInput,
  type NetworkDomain,
  type NodeRole,
} from '../provider.js';
import { TagKeys } from '../tags.js';
import { hasFilterWildcard, ignoring, type Ec2Context } from './ec2.js';
import { ec2ErrorCode, fromTags, toTags } from './mapping.js';

/**
 * A cluster network on EC2: a VPC tagged with the cluster id, a control-plane and a worker
 * security group, and per zone a control-plane and a worker subnet (`network-plan.ts`).
 *
 * EC2 calls, for a new network (2 zones): the VPC looked up, created and looked up again (the two
 * lookups batched with other clusters' in the region, `batch.ts`), the two groups created, their
 * rules authorized, the four subnets created: 9 calls of its own and 2 shared. A VPC this call
 * created is known to be empty, so nothing in it is described; in a VPC that was there already
 * (an earlier attempt, a zone added), the groups are described in one call and the subnets in one.
 */
export class AwsNetworks {
  constructor(private readonly ctx: Ec2Context) {}

  async ensureNetwork(input: EnsureNetworkInput): Promise<ClusterNetwork> {
    const op = 'ensureNetwork';
    const cidr = input.cidr ?? DEFAULT_NETWORK_CIDR;
    const plan = planSubnets(cidr, input.zones, this.ctx.cloud);
    const names = networkNames(input.clusterId);
    const ec2 = this.ctx.client(input.region);

    return this.ctx.call(op, async () => {
      const { vpc, created } = await this.ensureVpc(ec2, input.region, input.clusterId, cidr, names.network);
      const vpcId = vpc.VpcId!;
      if (vpc.CidrBlock && vpc.CidrBlock !== cidr) {
        throw this.ctx.invalid(
          op,
          `the network of cluster ${input.clusterId} exists with CIDR ${vpc.CidrBlock}, not ${cidr}`,
        );
      }

      // In a VPC made just now there is nothing to find; another replica that lost the race for
      // the VPC may be making the same groups and subnets in it, which the creates' conflicts tell.
      const existingGroups = created ? [] : await this.describeGroups(ec2, vpcId, NodeRoles.map(names.securityGroup));
      const groups = {} as Record<NodeRole, SecurityGroup>;
      for (const role of NodeRoles) {
        const name = names.securityGroup(role);
        groups[role] =
          existingGroups.find((g) => g.GroupName === name) ??
          (await this.createSecurityGroup(ec2, vpcId, input.clusterId, role, name));
      }
      for (const role of NodeRoles) {
        await this.ensureIngress(ec2, groups[role], ingressRules(role, input), {
          CONTROL_PLANE: groups.CONTROL_PLANE.GroupId!,
          WORKER: groups.WORKER.GroupId!,
        });
      }

      const existing = created ? [] : await this.describeSubnets(ec2, vpcId);
      const domains: Record<NodeRole, NetworkDomain> = {
        CONTROL_PLANE: { role: 'CONTROL_PLANE', securityGroupId: groups.CONTROL_PLANE.GroupId!, subnets: [] },
        WORKER: { role: 'WORKER', securityGroupId: groups.WORKER.GroupId!, subnets: [] },
      };
      for (const want of plan) {
        let subnet = existing.find((s) => s.CidrBlock === want.cidr);
        if (subnet && subnet.AvailabilityZone !== want.zone) {
          throw this.ctx.invalid(
            op,
            `subnet ${subnet.SubnetId} of cluster ${input.clusterId} (${want.cidr}) ` +
              `is in ${subnet.AvailabilityZone}, not ${want.zone}`,
          );
        }
        if (!subnet) {
          const tags = {
            Name: names.subnet(want.role, want.zone),
            [TagKeys.cluster]: input.clusterId,
            [TagKeys.network]: want.role,
            [TagKeys.zone]: want.zone!,
          };
          try {
            const made = await ec2.send(
              new CreateSubnetCommand({
                VpcId: vpcId,
                CidrBlock: want.cidr,
                AvailabilityZone: want.zone!,
                TagSpecifications: [{ ResourceType: 'subnet', Tags: toTags(tags) }],
              }),
            );
            subnet = made.Subnet!;
          } catch (error) {
            // Another replica made it first: the CIDR is taken by the subnet we want.
            if (ec2ErrorCode(error) !== 'InvalidSubnet.Conflict') throw error;
            subnet = (await this.describeSubnets(ec2, vpcId)).find((s) => s.CidrBlock === want.cidr);
            if (!subnet) throw error;
          }
        }
        domains[want.role].subnets.push({ id: subnet.SubnetId!, zone: want.zone, cidr: want.cidr });
      }

      return {
        clusterId: input.clusterId,
        region: input.region,
        networkId: vpcId,
        cidr,
        controlPlane: domains.CONTROL_PLANE,
        workers: domains.WORKER,
      };
    });
  }

  /**
   * The cluster's VPCs, oldest id first. Lookups of many clusters in one region within the batch
   * window are one DescribeVpcs call (a cluster id with EC2 wildcards is looked up alone).
   */
  private async findVpcs(ec2: EC2Client, region: string, clusterId: string): Promise<Vpc[]> {
    const vpcs = hasFilterWildcard(clusterId)
      ? await this.describeVpcs(ec2, [clusterId])
      : await this.ctx.batches.call(`findVpcs\n${region}`, clusterId, async (clusterIds) => {
          const all = await this.describeVpcs(ec2, [...new Set(clusterIds)]);
          return clusterIds.map((id) => all.filter((vpc) => fromTags(vpc.Tags)[TagKeys.cluster] === id));
        });
    // Oldest first by id is not defined by EC2; any fixed order makes replicas agree.
    return vpcs.sort((a, b) => (a.VpcId! < b.VpcId! ? -1 : 1));
  }

  /** The network VPCs of these clusters. */
  private async describeVpcs(ec2: EC2Client, clusterIds: string[]): Promise<Vpc[]> {
    const vpcs: Vpc[] = [];
    let NextToken: string | undefined;
    do {
      const page = await ec2.send(
        new DescribeVpcsCommand({
          Filters: [
            { Name: `tag:${TagKeys.cluster}`, Values: clusterIds },
            { Name: `tag:${TagKeys.network}`, Values: ['network'] },
          ],
          NextToken,
        }),
      );
      vpcs.push(...(page.Vpcs ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return vpcs;
  }

  /**
   * CreateVpc takes no client token. Two replicas racing can both create one; both then see
   * two and keep the first by id, and the loser deletes its own, so they converge on one.
   * `created`: this call made the VPC that is kept (nothing else can be in it yet but what a
   * racing replica makes).
   */
  private async ensureVpc(
    ec2: EC2Client,
    region: string,
    clusterId: string,
    cidr: string,
    name: string,
  ): Promise<{ vpc: Vpc; created: boolean }> {
    const found = await this.findVpcs(ec2, region, clusterId);
    if (found[0]) return { vpc: found[0], created: false };
    const { Vpc: created } = await ec2.send(
      new CreateVpcCommand({
        CidrBlock: cidr,
        TagSpecifications: [
          {
            ResourceType: 'vpc',
            Tags: toTags({ Name: name, [TagKeys.cluster]: clusterId, [TagKeys.network]: 'network' }),
          },
        ],
      }),
    );
    const all = await this.findVpcs(ec2, region, clusterId);
    const winner = all[0] ?? created!;
    if (winner.VpcId !== created!.VpcId) {
      await ec2.send(new DeleteVpcCommand({ VpcId: created!.VpcId! })).catch(() => undefined);
      return { vpc: winner, created: false };
    }
    return { vpc: winner, created: true };
  }

  /** The security groups of a VPC with these names, in one call. */
  private async describeGroups(ec2: EC2Client, vpcId: string, names: string[]): Promise<SecurityGroup[]> {
    const { SecurityGroups = [] } = await ec2.send(
      new DescribeSecurityGroupsCommand({
        Filters: [
          { Name: 'vpc-id', Values: [vpcId] },
          { Name: 'group-name', Values: names },
        ],
      }),
    );
    return SecurityGroups;
  }

  /**
   * Creates a role's security group. A new group has no inbound rules, so it is not described
   * again; one made meanwhile by another replica (InvalidGroup.Duplicate) is described.
   */
  private async createSecurityGroup(
    ec2: EC2Client,
    vpcId: string,
    clusterId: string,
    role: NodeRole,
    name: string,
  ): Promise<SecurityGroup> {
    try {
      const { GroupId } = await ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: name,
          Description:
            `Fleetgraph cluster ${clusterId}: ` + `${role === 'CONTROL_PLANE' ? 'control-plane' : 'worker'} nodes`,
          VpcId: vpcId,
          TagSpecifications: [
            {
              ResourceType: 'security-group',
              Tags: toTags({ Name: name, [TagKeys.cluster]: clusterId, [TagKeys.network]: role }),
            },
          ],
        }),
      );
      if (GroupId) return { GroupId, GroupName: name, VpcId: vpcId, IpPermissions: [] };
    } catch (error) {
      if (ec2ErrorCode(error) !== 'InvalidGroup.Duplicate') throw error;
    }
    const group = (await this.describeGroups(ec2, vpcId, [name]))[0];
    if (!group)
      throw new CloudError({
        code: 'TRANSIENT',
        message: `security group ${name} was created but is not visible yet`,
        cloud: this.ctx.cloud,
      });
    return group;
  }

  /**
   * Converges a group's inbound rules on the wanted ones: adds those it lacks and revokes those
   * no longer wanted (a narrowed API allow-list must close). AuthorizeSecurityGroupIngress is
   * all-or-nothing, so only missing rules are sent.
   */
  private async ensureIngress(
    ec2: EC2Client,
    group: SecurityGroup,
    rules: IngressRule[],
    groupIds: Record<NodeRole, string>,
  ): Promise<void> {
    const wanted = rules.map((rule) => toPermission(rule, groupIds));
    const have = (group.IpPermissions ?? []).flatMap(splitPermission);
    const missing = wanted.filter((want) => !have.some((h) => covers(h, want)));
    const unwanted = have.filter((h) => !wanted.some((want) => covers(want, h)));
    if (unwanted.length > 0) {
      await ignoring(['InvalidPermission.NotFound'], () =>
        ec2.send(new RevokeSecurityGroupIngressCommand({ GroupId: group.GroupId!, IpPermissions: unwanted })),
      );
    }
    if (missing.length === 0) return;
    try {
      await ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: group.GroupId!, IpPermissions: missing }));
    } catch (error) {
      if (ec2ErrorCode(error) !== 'InvalidPermission.Duplicate') throw error;
    }
  }

  private async describeSubnets(ec2: EC2Client, vpcId: string): Promise<Ec2Subnet[]> {
    const { Subnets = [] } = await ec2.send(
      new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
    );
    return Subnets;
  }

  async deleteNetwork(input: { clusterId: string; region: string }): Promise<void> {
    const ec2 = this.ctx.client(input.region);
    await this.ctx.call('deleteNetwork', async () => {
      for (const vpc of await this.findVpcs(ec2, input.region, input.clusterId)) {
        const vpcId = vpc.VpcId!;
        const { SecurityGroups = [] } = await ec2.send(
          new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
        );
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
          await ignoring(['InvalidSubnetID.NotFound'], () =>
            ec2.send(new DeleteSubnetCommand({ SubnetId: subnet.SubnetId! })),
          );
        }
        for (const group of ours) {
          await ignoring(['InvalidGroup.NotFound'], () =>
            ec2.send(new DeleteSecurityGroupCommand({ GroupId: group.GroupId! })),
          );
        }
        await ignoring(['InvalidVpcID.NotFound'], () => ec2.send(new DeleteVpcCommand({ VpcId: vpcId })));
      }
    });
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
  const base = {
    IpProtocol: p.IpProtocol,
    ...(p.IpProtocol === '-1' ? {} : { FromPort: p.FromPort, ToPort: p.ToPort }),
  };
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
  return (
    (want.UserIdGroupPairs ?? []).every((p) => groups.has(p.GroupId)) &&
    (want.IpRanges ?? []).every((r) => cidrs.has(r.CidrIp))
  );
}
