import { ACCOUNT_ID, zonesOf } from '../catalog.js';
import type { SecurityGroupDoc, SecurityGroupRule, SubnetDoc, Tags, VpcDoc } from '../model.js';
import { cidrContains, cidrOverlaps, newId, parseCidr, usableAddresses } from '../net.js';
import type { CloudState } from '../state.js';
import {
  checkId,
  findGroup,
  findSubnet,
  findVpc,
  liveInstances,
  type ActionContext,
  type ActionHandler,
} from './context.js';
import { Ec2Error, ec2Errors } from './ec2-error.js';
import { applyFilters, type FilterFields } from './filters.js';
import type { Params } from './query.js';
import { tagSet, type XmlValue } from './xml.js';

// ---------------------------------------------------------------- VPCs

function vpcXml(v: VpcDoc): XmlValue {
  return {
    vpcId: v.id,
    ownerId: ACCOUNT_ID,
    state: 'available',
    cidrBlock: v.cidr,
    cidrBlockAssociationSet: [
      { associationId: `vpc-cidr-assoc-${v.id.slice(4)}`, cidrBlock: v.cidr, cidrBlockState: { state: 'associated' } },
    ],
    dhcpOptionsId: 'dopt-00000000000000000',
    instanceTenancy: 'default',
    isDefault: v.isDefault,
    tagSet: tagSet(v.tags),
  };
}

/** Every VPC comes with a security group named `default` that lets its members talk. */
async function createDefaultGroup(state: CloudState, region: string, vpcId: string): Promise<SecurityGroupDoc> {
  const id = newId('sg');
  return state.securityGroups.put({
    id,
    region,
    vpcId,
    name: 'default',
    description: 'default VPC security group',
    rules: [{ protocol: '-1', groupId: id }],
    tags: {},
  });
}

/** The default VPC of a region, with a default subnet per zone, as a new AWS account has. */
export async function ensureDefaultNetwork(state: CloudState, region: string): Promise<void> {
  if (state.vpcs.values().some((v) => v.region === region && v.isDefault)) return;
  const vpc = await state.vpcs.put({ id: newId('vpc'), region, cidr: '172.31.0.0/16', isDefault: true, tags: {} });
  await createDefaultGroup(state, region, vpc.id);
  for (const [i, zone] of zonesOf(region).entries()) {
    await state.subnets.put({
      id: newId('subnet'),
      region,
      vpcId: vpc.id,
      cidr: `172.31.${16 * i}.0/20`,
      zone,
      isDefault: true,
      tags: {},
      nextHost: 0,
    });
  }
}

export const createVpc: ActionHandler = async (ctx) => {
  const cidrText = ctx.q.required('CidrBlock');
  const cidr = parseCidr(cidrText);
  if (!cidr || cidr.bits < 16 || cidr.bits > 28)
    throw new Ec2Error('InvalidVpc.Range', `The CIDR '${cidrText}' is invalid.`);
  const vpc = await ctx.state.vpcs.put({
    id: newId('vpc'),
    region: ctx.region,
    cidr: cidrText,
    isDefault: false,
    tags: ctx.q.tagsFor('vpc'),
  });
  await createDefaultGroup(ctx.state, ctx.region, vpc.id);
  return { vpc: vpcXml(vpc) };
};

const vpcFields: FilterFields<VpcDoc> = {
  'vpc-id': (v) => v.id,
  'cidr-block': (v) => v.cidr,
  cidr: (v) => v.cidr,
  'is-default': (v) => String(v.isDefault),
  state: () => 'available',
  'owner-id': () => ACCOUNT_ID,
};

export const describeVpcs: ActionHandler = async (ctx) => {
  const ids = ctx.q.list('VpcId');
  let vpcs = ctx.state.vpcs.values().filter((v) => v.region === ctx.region);
  if (ids.length > 0) vpcs = ids.map((id) => findVpc(ctx, id));
  return { vpcSet: applyFilters(vpcs, ctx.q.filters(), vpcFields).map(vpcXml) };
};

export const deleteVpc: ActionHandler = async (ctx) => {
  const vpc = findVpc(ctx, ctx.q.required('VpcId'));
  const dependent =
    ctx.state.subnets.values().some((s) => s.vpcId === vpc.id) ||
    ctx.state.securityGroups.values().some((g) => g.vpcId === vpc.id && g.name !== 'default') ||
    liveInstances(ctx).some((i) => i.vpcId === vpc.id);
  if (dependent) throw ec2Errors.dependencyViolation(`The vpc '${vpc.id}' has dependencies and cannot be deleted.`);
  for (const group of ctx.state.securityGroups.values().filter((g) => g.vpcId === vpc.id))
    await ctx.state.securityGroups.remove(group.id);
  await ctx.state.vpcs.remove(vpc.id);
  return { return: true };
};

// ---------------------------------------------------------------- subnets

function subnetXml(s: SubnetDoc, used: number): XmlValue {
  return {
    subnetId: s.id,
    subnetArn: `arn:aws:ec2:${s.region}:${ACCOUNT_ID}:subnet/${s.id}`,
    state: 'available',
    ownerId: ACCOUNT_ID,
    vpcId: s.vpcId,
    cidrBlock: s.cidr,
    availableIpAddressCount: Math.max(usableAddresses(s.cidr) - used, 0),
    availabilityZone: s.zone,
    availabilityZoneId: s.zone.replace(
      /^local-(\d+)([a-z])$/,
      (_m, n: string, z: string) => `lcl${n}-az${z.charCodeAt(0) - 96}`,
    ),
    defaultForAz: s.isDefault,
    mapPublicIpOnLaunch: s.isDefault,
    tagSet: tagSet(s.tags),
  };
}

function usedAddresses(ctx: ActionContext, subnetId: string): number {
  return liveInstances(ctx).filter((i) => i.subnetId === subnetId).length;
}

export const createSubnet: ActionHandler = async (ctx) => {
  const { q } = ctx;
  const vpc = findVpc(ctx, q.required('VpcId'));
  const cidrText = q.required('CidrBlock');
  const cidr = parseCidr(cidrText);
  const vpcCidr = parseCidr(vpc.cidr)!;
  if (!cidr || cidr.bits > 28 || !cidrContains(vpcCidr, cidr))
    throw new Ec2Error('InvalidSubnet.Range', `The CIDR '${cidrText}' is invalid.`);
  const zones = zonesOf(ctx.region);
  const zone = q.string('AvailabilityZone') ?? zones[Math.floor(ctx.sim.random() * zones.length)]!;
  if (!zones.includes(zone)) {
    throw ec2Errors.invalidParameterValue(
      `Value (${zone}) for parameter availabilityZone is invalid. ` +
        `Subnets can currently only be created in the following availability zones: ${zones.join(', ')}.`,
    );
  }
  const clash = ctx.state.subnets.values().find((s) => s.vpcId === vpc.id && cidrOverlaps(parseCidr(s.cidr)!, cidr));
  if (clash) throw new Ec2Error('InvalidSubnet.Conflict', `The CIDR '${cidrText}' conflicts with another subnet`);
  const subnet = await ctx.state.subnets.put({
    id: newId('subnet'),
    region: ctx.region,
    vpcId: vpc.id,
    cidr: cidrText,
    zone,
    isDefault: false,
    tags: q.tagsFor('subnet'),
    nextHost: 0,
  });
  return { subnet: subnetXml(subnet, 0) };
};

const subnetFields: FilterFields<SubnetDoc> = {
  'subnet-id': (s) => s.id,
  'vpc-id': (s) => s.vpcId,
  'availability-zone': (s) => s.zone,
  'cidr-block': (s) => s.cidr,
  'default-for-az': (s) => String(s.isDefault),
  state: () => 'available',
};

export const describeSubnets: ActionHandler = async (ctx) => {
  const ids = ctx.q.list('SubnetId');
  let subnets = ctx.state.subnets.values().filter((s) => s.region === ctx.region);
  if (ids.length > 0) subnets = ids.map((id) => findSubnet(ctx, id));
  return {
    subnetSet: applyFilters(subnets, ctx.q.filters(), subnetFields).map((s) => subnetXml(s, usedAddresses(ctx, s.id))),
  };
};

export const deleteSubnet: ActionHandler = async (ctx) => {
  const subnet = findSubnet(ctx, ctx.q.required('SubnetId'));
  if (usedAddresses(ctx, subnet.id) > 0)
    throw ec2Errors.dependencyViolation(`The subnet '${subnet.id}' has dependencies and cannot be deleted.`);
  await ctx.state.subnets.remove(subnet.id);
  return { return: true };
};

// ---------------------------------------------------------------- security groups

function groupXml(g: SecurityGroupDoc): XmlValue {
  const byPorts = new Map<string, SecurityGroupRule[]>();
  for (const rule of g.rules) {
    const key = `${rule.protocol}:${rule.fromPort ?? ''}:${rule.toPort ?? ''}`;
    byPorts.set(key, [...(byPorts.get(key) ?? []), rule]);
  }
  return {
    ownerId: ACCOUNT_ID,
    groupId: g.id,
    groupName: g.name,
    groupDescription: g.description,
    vpcId: g.vpcId,
    ipPermissions: [...byPorts.values()].map((rules) => ({
      ipProtocol: rules[0]!.protocol,
      fromPort: rules[0]!.protocol === '-1' ? undefined : rules[0]!.fromPort,
      toPort: rules[0]!.protocol === '-1' ? undefined : rules[0]!.toPort,
      groups: rules
        .filter((r) => r.groupId)
        .map((r) => ({ userId: ACCOUNT_ID, groupId: r.groupId, description: r.description })),
      ipRanges: rules.filter((r) => r.cidr).map((r) => ({ cidrIp: r.cidr, description: r.description })),
      ipv6Ranges: [],
      prefixListIds: [],
    })),
    ipPermissionsEgress: [
      { ipProtocol: '-1', groups: [], ipRanges: [{ cidrIp: '0.0.0.0/0' }], ipv6Ranges: [], prefixListIds: [] },
    ],
    tagSet: tagSet(g.tags),
  };
}

export const createSecurityGroup: ActionHandler = async (ctx) => {
  const { q } = ctx;
  const name = q.required('GroupName');
  const description = q.required('GroupDescription');
  const vpcId = q.string('VpcId') ?? ctx.state.vpcs.values().find((v) => v.region === ctx.region && v.isDefault)?.id;
  if (!vpcId) throw new Ec2Error('VPCIdNotSpecified', 'No default VPC for this user');
  const vpc = findVpc(ctx, vpcId);
  if (name === 'default')
    throw ec2Errors.invalidParameterValue(
      `Value (default) for parameter GroupName is invalid. Group names may not be 'default'.`,
    );
  if (ctx.state.securityGroups.values().some((g) => g.vpcId === vpc.id && g.name === name))
    throw ec2Errors.groupDuplicate(name, vpc.id);
  const group = await ctx.state.securityGroups.put({
    id: newId('sg'),
    region: ctx.region,
    vpcId: vpc.id,
    name,
    description,
    rules: [],
    tags: q.tagsFor('security-group'),
  });
  return { return: true, groupId: group.id, tagSet: tagSet(group.tags) };
};

const groupFields: FilterFields<SecurityGroupDoc> = {
  'group-id': (g) => g.id,
  'group-name': (g) => g.name,
  'vpc-id': (g) => g.vpcId,
  description: (g) => g.description,
  'owner-id': () => ACCOUNT_ID,
};

export const describeSecurityGroups: ActionHandler = async (ctx) => {
  const ids = ctx.q.list('GroupId');
  const names = ctx.q.list('GroupName');
  let groups = ctx.state.securityGroups.values().filter((g) => g.region === ctx.region);
  if (ids.length > 0) groups = ids.map((id) => findGroup(ctx, id));
  if (names.length > 0) {
    // Names alone address the default VPC's groups, as in EC2.
    const defaultVpc = ctx.state.vpcs.values().find((v) => v.region === ctx.region && v.isDefault)?.id;
    for (const name of names) {
      if (!groups.some((g) => g.name === name && g.vpcId === defaultVpc)) {
        throw new Ec2Error(
          'InvalidGroup.NotFound',
          `The security group '${name}' does not exist in default VPC '${defaultVpc}'`,
        );
      }
    }
    groups = groups.filter((g) => names.includes(g.name) && g.vpcId === defaultVpc);
  }
  return { securityGroupInfo: applyFilters(groups, ctx.q.filters(), groupFields).map(groupXml) };
};

/** `IpPermissions.N` as single-source rules. */
function rulesOf(ctx: ActionContext, permissions: Params[]): SecurityGroupRule[] {
  const rules: SecurityGroupRule[] = [];
  for (const p of permissions) {
    const raw = typeof p.IpProtocol === 'string' ? p.IpProtocol.toLowerCase() : undefined;
    if (!raw) throw ec2Errors.missingParameter('IpPermissions.IpProtocol');
    const protocol = raw === 'all' || raw === '-1' ? '-1' : raw === '6' ? 'tcp' : raw === '17' ? 'udp' : raw;
    if (!['-1', 'tcp', 'udp', 'icmp'].includes(protocol))
      throw ec2Errors.invalidParameterValue(`Invalid value '${raw}' for IP protocol. Unknown protocol.`);
    const ports = protocol === '-1' ? {} : { fromPort: Number(p.FromPort), toPort: Number(p.ToPort) };
    if (protocol !== '-1' && (!Number.isInteger(ports.fromPort) || !Number.isInteger(ports.toPort))) {
      throw ec2Errors.invalidParameterValue(
        'Invalid value for portRange. Must specify both from and to ports with TCP/UDP.',
      );
    }
    for (const g of Array.isArray(p.Groups) ? p.Groups : []) {
      if (typeof g !== 'object' || Array.isArray(g) || typeof g.GroupId !== 'string') continue;
      findGroup(ctx, g.GroupId);
      rules.push({
        protocol,
        ...ports,
        groupId: g.GroupId,
        ...(typeof g.Description === 'string' ? { description: g.Description } : {}),
      });
    }
    for (const r of Array.isArray(p.IpRanges) ? p.IpRanges : []) {
      if (typeof r !== 'object' || Array.isArray(r) || typeof r.CidrIp !== 'string') continue;
      if (!parseCidr(r.CidrIp)) throw ec2Errors.invalidParameterValue(`CIDR block ${r.CidrIp} is malformed`);
      rules.push({
        protocol,
        ...ports,
        cidr: r.CidrIp,
        ...(typeof r.Description === 'string' ? { description: r.Description } : {}),
      });
    }
  }
  return rules;
}

function sameRule(a: SecurityGroupRule, b: SecurityGroupRule): boolean {
  return (
    a.protocol === b.protocol &&
    a.fromPort === b.fromPort &&
    a.toPort === b.toPort &&
    a.groupId === b.groupId &&
    a.cidr === b.cidr
  );
}

export const authorizeSecurityGroupIngress: ActionHandler = async (ctx) => {
  const group = findGroup(ctx, ctx.q.required('GroupId'));
  const rules = rulesOf(ctx, ctx.q.objects('IpPermissions'));
  for (const rule of rules) {
    if (group.rules.some((r) => sameRule(r, rule)))
      throw ec2Errors.permissionDuplicate(rule.groupId ?? rule.cidr ?? '', rule.protocol);
  }
  await ctx.state.securityGroups.put({ ...group, rules: [...group.rules, ...rules] });
  return {
    return: true,
    securityGroupRuleSet: rules.map((r) => ({
      securityGroupRuleId: newId('sgr'),
      groupId: group.id,
      groupOwnerId: ACCOUNT_ID,
      isEgress: false,
      ipProtocol: r.protocol,
      fromPort: r.fromPort ?? -1,
      toPort: r.toPort ?? -1,
      cidrIpv4: r.cidr,
      referencedGroupInfo: r.groupId ? { groupId: r.groupId, userId: ACCOUNT_ID } : undefined,
      description: r.description,
    })),
  };
};

export const revokeSecurityGroupIngress: ActionHandler = async (ctx) => {
  const group = findGroup(ctx, ctx.q.required('GroupId'));
  const rules = rulesOf(ctx, ctx.q.objects('IpPermissions'));
  await ctx.state.securityGroups.put({
    ...group,
    rules: group.rules.filter((r) => !rules.some((x) => sameRule(r, x))),
  });
  return { return: true };
};

export const deleteSecurityGroup: ActionHandler = async (ctx) => {
  const group = findGroup(ctx, ctx.q.required('GroupId'));
  if (group.name === 'default') {
    throw new Ec2Error(
      'CannotDelete',
      `the specified group: "${group.id}" name: "default" cannot be deleted by a user`,
    );
  }
  const inUse =
    liveInstances(ctx).some((i) => i.securityGroupIds.includes(group.id)) ||
    ctx.state.securityGroups.values().some((g) => g.id !== group.id && g.rules.some((r) => r.groupId === group.id));
  if (inUse) throw ec2Errors.dependencyViolation(`resource ${group.id} has a dependent object`);
  await ctx.state.securityGroups.remove(group.id);
  return { return: true, groupId: group.id };
};

// ---------------------------------------------------------------- tags

export const createTags: ActionHandler = async (ctx) => {
  const resources = ctx.q.list('ResourceId');
  if (resources.length === 0) throw ec2Errors.missingParameter('ResourceId');
  const tags: Tags = {};
  for (const t of ctx.q.objects('Tag'))
    if (typeof t.Key === 'string') tags[t.Key] = typeof t.Value === 'string' ? t.Value : '';
  for (const id of resources) {
    if (id.startsWith('i-')) {
      const doc = ctx.state.instances.get(checkId('i', id));
      if (!doc || doc.region !== ctx.region) throw ec2Errors.instancesNotFound([id]);
      await ctx.state.instances.put({ ...doc, tags: { ...doc.tags, ...tags } });
    } else if (id.startsWith('ami-')) {
      const doc = ctx.state.images.get(checkId('ami', id));
      if (!doc || doc.region !== ctx.region || doc.ownerId !== ACCOUNT_ID) throw ec2Errors.imageNotFound([id]);
      await ctx.state.images.put({ ...doc, tags: { ...doc.tags, ...tags } });
    } else if (id.startsWith('vpc-')) {
      const doc = findVpc(ctx, id);
      await ctx.state.vpcs.put({ ...doc, tags: { ...doc.tags, ...tags } });
    } else if (id.startsWith('subnet-')) {
      const doc = findSubnet(ctx, id);
      await ctx.state.subnets.put({ ...doc, tags: { ...doc.tags, ...tags } });
    } else if (id.startsWith('sg-')) {
      const doc = findGroup(ctx, id);
      await ctx.state.securityGroups.put({ ...doc, tags: { ...doc.tags, ...tags } });
    } else {
      throw new Ec2Error('InvalidID', `The ID '${id}' is not valid`);
    }
  }
  return { return: true };
};
