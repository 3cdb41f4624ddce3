import { ACCOUNT_ID, instanceType, zonesOf } from '../catalog.js';
import { INSTANCE_STATE_CODES, type InstanceDoc, type SubnetDoc } from '../model.js';
import { hostAddress, newId, usableAddresses } from '../net.js';
import {
  checkId,
  findGroup,
  findInstance,
  findSubnet,
  idempotent,
  page,
  visibleImages,
  type ActionContext,
  type ActionHandler,
} from './context.js';
import { Ec2Error, ec2Errors } from './ec2-error.js';
import { applyFilters, type FilterFields } from './filters.js';
import { tagSet, type XmlValue } from './xml.js';

function instanceXml(ctx: ActionContext, i: InstanceDoc): XmlValue {
  const groups = i.securityGroupIds.map((id) => ({
    groupId: id,
    groupName: ctx.state.securityGroups.get(id)?.name ?? id,
  }));
  const type = instanceType(i.instanceType);
  const vcpus = type?.vcpus ?? i.vcpus;
  const live = i.state !== 'terminated';
  return {
    instanceId: i.id,
    imageId: i.imageId,
    instanceState: { code: INSTANCE_STATE_CODES[i.state], name: i.state },
    privateDnsName: live ? `ip-${i.privateIp.replace(/\./g, '-')}.${i.region}.compute.internal` : '',
    dnsName: '',
    reason: i.stateReason ? `${i.stateReason.message}` : '',
    amiLaunchIndex: 0,
    productCodes: [],
    instanceType: i.instanceType,
    launchTime: i.launchTime,
    placement: { availabilityZone: i.zone, groupName: '', tenancy: 'default' },
    monitoring: { state: 'disabled' },
    subnetId: live ? i.subnetId : undefined,
    vpcId: live ? i.vpcId : undefined,
    privateIpAddress: live ? i.privateIp : undefined,
    groupSet: groups,
    stateReason: i.stateReason,
    architecture: 'x86_64',
    rootDeviceType: 'ebs',
    rootDeviceName: '/dev/sda1',
    blockDeviceMapping: [],
    virtualizationType: 'hvm',
    clientToken: i.clientToken,
    tagSet: tagSet(i.tags),
    hypervisor: 'xen',
    ebsOptimized: false,
    cpuOptions: { coreCount: Math.max(1, Math.floor(vcpus / 2)), threadsPerCore: vcpus > 1 ? 2 : 1 },
    metadataOptions: { state: 'applied', httpTokens: 'required', httpEndpoint: 'enabled' },
  };
}

function reservationXml(ctx: ActionContext, reservationId: string, instances: InstanceDoc[]): Record<string, XmlValue> {
  const groupIds = [...new Set(instances.flatMap((i) => i.securityGroupIds))];
  return {
    reservationId,
    ownerId: ACCOUNT_ID,
    groupSet: groupIds.map((id) => ({ groupId: id, groupName: ctx.state.securityGroups.get(id)?.name ?? id })),
    instancesSet: instances.map((i) => instanceXml(ctx, i)),
  };
}

/** The default subnet of a zone, in the region's default VPC. */
function defaultSubnet(ctx: ActionContext, zone: string): SubnetDoc {
  const subnet = ctx.state.subnets.values().find((s) => s.region === ctx.region && s.zone === zone && s.isDefault);
  if (!subnet) throw new Ec2Error('MissingInput', `No default subnet for availability zone: '${zone}'.`);
  return subnet;
}

export const runInstances: ActionHandler = async (ctx) => {
  const { q } = ctx;
  const imageId = checkId('ami', q.required('ImageId'));
  const typeName = q.required('InstanceType');
  const minCount = q.int('MinCount');
  const maxCount = q.int('MaxCount');
  if (minCount === undefined) throw ec2Errors.missingParameter('MinCount');
  if (maxCount === undefined) throw ec2Errors.missingParameter('MaxCount');
  if (minCount < 1 || maxCount < minCount) {
    throw ec2Errors.invalidParameterValue(
      `Invalid value '${maxCount}' for maxCount. It must be greater than or equal to minCount (${minCount}).`,
    );
  }
  const clientToken = q.string('ClientToken') ?? '';

  // A repeat of a request answers as the first did, whatever changed since: the token is looked up first.
  const result = await idempotent(ctx, 'RunInstances', clientToken || undefined, async () => {
    const type = instanceType(typeName);
    if (!type) throw ec2Errors.invalidParameterValue(`Invalid value '${typeName}' for InstanceType.`);

    const image = visibleImages(ctx).find((i) => i.id === imageId);
    if (!image) throw ec2Errors.imageNotFound([imageId]);
    if (image.state !== 'available') throw ec2Errors.imageUnavailable(imageId, image.state);

    const zoneAsked = q.object('Placement')?.AvailabilityZone;
    const subnetId = q.string('SubnetId');
    let subnet: SubnetDoc;
    if (subnetId) {
      subnet = findSubnet(ctx, subnetId);
      if (typeof zoneAsked === 'string' && zoneAsked !== subnet.zone) {
        throw ec2Errors.invalidParameterValue(
          `Value (${zoneAsked}) for parameter availabilityZone is invalid. Subnet '${subnet.id}' is in ${subnet.zone}.`,
        );
      }
    } else {
      const zones = zonesOf(ctx.region);
      const zone = typeof zoneAsked === 'string' ? zoneAsked : zones[Math.floor(ctx.sim.random() * zones.length)]!;
      if (!zones.includes(zone)) throw ec2Errors.invalidParameterValue(`Invalid availability zone: [${zone}]`);
      subnet = defaultSubnet(ctx, zone);
    }
    let groupIds = q.list('SecurityGroupId');
    for (const id of groupIds) {
      const group = findGroup(ctx, id);
      if (group.vpcId !== subnet.vpcId) {
        throw new Ec2Error(
          'InvalidParameter',
          `Security group ${id} and subnet ${subnet.id} belong to different networks.`,
        );
      }
    }
    if (groupIds.length === 0) {
      const fallback = ctx.state.securityGroups.values().find((g) => g.vpcId === subnet.vpcId && g.name === 'default');
      groupIds = fallback ? [fallback.id] : [];
    }
    const tags = q.tagsFor('instance');
    const userData = q.string('UserData');

    const limit = ctx.sim.vcpuLimit(ctx.region);
    const room = Math.floor((limit - ctx.sim.vcpuUsed(ctx.region)) / type.vcpus);
    if (room < minCount) throw ec2Errors.vcpuLimitExceeded(limit);
    const count = Math.min(maxCount, room);
    const inSubnet = ctx.state.instances
      .values()
      .filter((i) => i.subnetId === subnet.id && i.state !== 'terminated').length;
    if (inSubnet + count > usableAddresses(subnet.cidr)) {
      throw new Ec2Error(
        'InsufficientFreeAddressesInSubnet',
        `There are not enough free addresses in subnet '${subnet.id}' to satisfy the requested number of instances.`,
      );
    }
    const reservationId = newId('r');
    const now = ctx.sim.now();
    const ids: string[] = [];
    let nextHost = subnet.nextHost;
    for (let n = 0; n < count; n++) {
      const doc = await ctx.state.instances.put({
        id: newId('i'),
        region: ctx.region,
        zone: subnet.zone,
        instanceType: type.name,
        vcpus: type.vcpus,
        memoryMiB: type.memoryMiB,
        imageId,
        state: 'pending',
        launchTime: new Date(now).toISOString(),
        dueAt: now + ctx.sim.duration('boot'),
        reservationId,
        clientToken,
        vpcId: subnet.vpcId,
        subnetId: subnet.id,
        securityGroupIds: groupIds,
        privateIp: hostAddress(subnet.cidr, nextHost++),
        tags,
        ...(userData ? { userData } : {}),
      });
      ids.push(doc.id);
    }
    await ctx.state.subnets.put({ ...ctx.state.subnets.get(subnet.id)!, nextHost });
    return { resourceIds: ids, reservationId };
  });
  const instances = result.resourceIds.map((id) => ctx.state.instances.get(id)).filter((i): i is InstanceDoc => !!i);
  return reservationXml(ctx, result.reservationId ?? '', instances);
};

const instanceFields: FilterFields<InstanceDoc> = {
  'instance-id': (i) => i.id,
  'instance-state-name': (i) => i.state,
  'instance-state-code': (i) => String(INSTANCE_STATE_CODES[i.state]),
  'instance-type': (i) => i.instanceType,
  'availability-zone': (i) => i.zone,
  'subnet-id': (i) => i.subnetId,
  'vpc-id': (i) => i.vpcId,
  'image-id': (i) => i.imageId,
  'client-token': (i) => i.clientToken,
  'reservation-id': (i) => i.reservationId,
  'private-ip-address': (i) => i.privateIp,
  'instance.group-id': (i) => i.securityGroupIds,
};

/** The instances of the request's region that EC2 still shows: terminated ones stay visible for about an hour. */
function visibleInstances(ctx: ActionContext): InstanceDoc[] {
  const horizon = ctx.sim.now() - ctx.sim.terminatedVisibleMs();
  return ctx.state.instances
    .values()
    .filter((i) => i.region === ctx.region && !(i.state === 'terminated' && (i.terminatedAt ?? 0) < horizon));
}

export const describeInstances: ActionHandler = async (ctx) => {
  const { q } = ctx;
  const ids = q.list('InstanceId').map((id) => checkId('i', id));
  const maxResults = q.int('MaxResults');
  if (ids.length > 0 && maxResults !== undefined) {
    throw ec2Errors.invalidParameterCombination(
      'The parameter instancesSet cannot be used with the parameter maxResults',
    );
  }
  const visible = visibleInstances(ctx);
  let selected = visible;
  if (ids.length > 0) {
    const missing = ids.filter((id) => !visible.some((i) => i.id === id));
    if (missing.length > 0) throw ec2Errors.instancesNotFound(missing);
    selected = visible.filter((i) => ids.includes(i.id));
  }
  selected = applyFilters(selected, q.filters(), instanceFields).sort(
    (a, b) => a.launchTime.localeCompare(b.launchTime) || a.id.localeCompare(b.id),
  );
  const { items, nextToken } = page(selected, maxResults, q.string('NextToken'), [5, 1000]);
  const reservations = new Map<string, InstanceDoc[]>();
  for (const instance of items)
    reservations.set(instance.reservationId, [...(reservations.get(instance.reservationId) ?? []), instance]);
  return {
    reservationSet: [...reservations].map(([reservationId, instances]) =>
      reservationXml(ctx, reservationId, instances),
    ),
    nextToken,
  };
};

export const terminateInstances: ActionHandler = async (ctx) => {
  const ids = ctx.q.list('InstanceId').map((id) => checkId('i', id));
  if (ids.length === 0) throw ec2Errors.missingParameter('InstanceId');
  const missing = ids.filter((id) => !findInstance(ctx, id));
  if (missing.length > 0) throw ec2Errors.instancesNotFound(missing);
  const changes: XmlValue[] = [];
  for (const id of ids) {
    const instance = findInstance(ctx, id)!;
    const previous = instance.state;
    let current = instance;
    if (previous !== 'shutting-down' && previous !== 'terminated') {
      current = await ctx.state.instances.put({
        ...instance,
        state: 'shutting-down',
        dueAt: ctx.sim.now() + ctx.sim.duration('shutdown'),
      });
    }
    changes.push({
      instanceId: id,
      currentState: { code: INSTANCE_STATE_CODES[current.state], name: current.state },
      previousState: { code: INSTANCE_STATE_CODES[previous], name: previous },
    });
  }
  return { instancesSet: changes };
};

/**
 * Each attribute DescribeInstanceAttribute answers, as EC2's `InstanceAttribute` carries it: an
 * `AttributeValue` (`<x><value>...</value></x>`, empty when unset), an `AttributeBooleanValue`,
 * or a list.
 */
const INSTANCE_ATTRIBUTES: Record<string, (ctx: ActionContext, i: InstanceDoc) => XmlValue> = {
  instanceType: (_ctx, i) => ({ value: i.instanceType }),
  // HVM images have neither kernel nor RAM disk: EC2 answers an empty element.
  kernel: () => ({}),
  ramdisk: () => ({}),
  // Base64, as RunInstances took it; an empty element when the instance has none.
  userData: (_ctx, i) => (i.userData ? { value: i.userData } : {}),
  disableApiTermination: () => ({ value: false }),
  disableApiStop: () => ({ value: false }),
  instanceInitiatedShutdownBehavior: () => ({ value: 'stop' }),
  rootDeviceName: () => ({ value: '/dev/sda1' }),
  blockDeviceMapping: () => [],
  productCodes: () => [],
  sourceDestCheck: () => ({ value: true }),
  groupSet: (ctx, i) =>
    i.securityGroupIds.map((id) => ({ groupId: id, groupName: ctx.state.securityGroups.get(id)?.name ?? id })),
  ebsOptimized: () => ({ value: false }),
  sriovNetSupport: () => ({}),
  enaSupport: () => ({ value: true }),
  enclaveOptions: () => ({ enabled: false }),
};

/** DescribeInstanceAttribute: one attribute of one instance, e.g. its user data (base64), as EC2 answers it. */
export const describeInstanceAttribute: ActionHandler = async (ctx) => {
  const { q } = ctx;
  const id = checkId('i', q.required('InstanceId'));
  const attribute = q.required('Attribute');
  const render = Object.hasOwn(INSTANCE_ATTRIBUTES, attribute) ? INSTANCE_ATTRIBUTES[attribute] : undefined;
  if (!render)
    throw ec2Errors.invalidParameterValue(
      `Value (${attribute}) for parameter attribute is invalid. Unknown attribute.`,
    );
  const instance = visibleInstances(ctx).find((i) => i.id === id);
  if (!instance) throw ec2Errors.instancesNotFound([id]);
  return { instanceId: instance.id, [attribute]: render(ctx, instance) };
};
