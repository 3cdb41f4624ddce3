import { INSTANCE_TYPES, REGIONS, zoneIdOf, zonesOf, type InstanceTypeSpec } from '../catalog.js';
import { page, type ActionHandler } from './context.js';
import { Ec2Error, ec2Errors } from './ec2-error.js';
import { applyFilters, type FilterFields } from './filters.js';

interface RegionRow {
  name: string;
  tags: Record<string, string>;
}

export const describeRegions: ActionHandler = async (ctx) => {
  const names = ctx.q.list('RegionName');
  const unknown = names.filter((n) => !(REGIONS as readonly string[]).includes(n));
  if (unknown.length > 0) throw ec2Errors.invalidParameterValue(`Invalid region names: [${unknown.join(', ')}]`);
  const rows: RegionRow[] = REGIONS.filter((r) => names.length === 0 || names.includes(r)).map((name) => ({
    name,
    tags: {},
  }));
  const host = new URL(ctx.endpoint).host;
  const fields: FilterFields<RegionRow> = {
    'region-name': (r) => r.name,
    endpoint: () => host,
    'opt-in-status': () => 'opt-in-not-required',
  };
  return {
    regionInfo: applyFilters(rows, ctx.q.filters(), fields).map((r) => ({
      regionName: r.name,
      regionEndpoint: host,
      optInStatus: 'opt-in-not-required',
    })),
  };
};

interface ZoneRow {
  name: string;
  tags: Record<string, string>;
}

export const describeAvailabilityZones: ActionHandler = async (ctx) => {
  const names = ctx.q.list('ZoneName');
  const zones = zonesOf(ctx.region);
  const unknown = names.filter((n) => !zones.includes(n));
  if (unknown.length > 0) throw ec2Errors.invalidParameterValue(`The zone '${unknown[0]}' does not exist.`);
  const rows: ZoneRow[] = zones
    .filter((z) => names.length === 0 || names.includes(z))
    .map((name) => ({ name, tags: {} }));
  const fields: FilterFields<ZoneRow> = {
    'zone-name': (z) => z.name,
    'zone-id': (z) => zoneIdOf(z.name),
    state: () => 'available',
    'zone-type': () => 'availability-zone',
    'region-name': () => ctx.region,
    'group-name': () => ctx.region,
    'opt-in-status': () => 'opt-in-not-required',
  };
  return {
    availabilityZoneInfo: applyFilters(rows, ctx.q.filters(), fields).map((z) => ({
      zoneName: z.name,
      zoneState: 'available',
      regionName: ctx.region,
      zoneId: zoneIdOf(z.name),
      zoneType: 'availability-zone',
      optInStatus: 'opt-in-not-required',
      groupName: ctx.region,
      networkBorderGroup: ctx.region,
      messageSet: [],
    })),
  };
};

type TypeRow = InstanceTypeSpec & { tags: Record<string, string> };

export const describeInstanceTypes: ActionHandler = async (ctx) => {
  const names = ctx.q.list('InstanceType');
  const unknown = names.filter((n) => !INSTANCE_TYPES.some((t) => t.name === n));
  if (unknown.length > 0)
    throw new Ec2Error(
      'InvalidInstanceType',
      `The following supplied instance types do not exist: [${unknown.join(', ')}]`,
    );
  const rows: TypeRow[] = INSTANCE_TYPES.filter((t) => names.length === 0 || names.includes(t.name)).map((t) => ({
    ...t,
    tags: {},
  }));
  const fields: FilterFields<TypeRow> = {
    'instance-type': (t) => t.name,
    'vcpu-info.default-vcpus': (t) => String(t.vcpus),
    'memory-info.size-in-mib': (t) => String(t.memoryMiB),
    'current-generation': () => 'true',
    'processor-info.supported-architecture': () => 'x86_64',
  };
  const selected = applyFilters(rows, ctx.q.filters(), fields);
  const { items, nextToken } = page(selected, ctx.q.int('MaxResults'), ctx.q.string('NextToken'), [5, 100]);
  return {
    instanceTypeSet: items.map((t) => ({
      instanceType: t.name,
      currentGeneration: true,
      freeTierEligible: false,
      supportedUsageClasses: ['on-demand', 'spot'],
      supportedRootDeviceTypes: ['ebs'],
      supportedVirtualizationTypes: ['hvm'],
      bareMetal: false,
      hypervisor: 'nitro',
      processorInfo: { supportedArchitectures: ['x86_64'] },
      vCpuInfo: {
        defaultVCpus: t.vcpus,
        defaultCores: Math.max(1, t.vcpus / 2),
        defaultThreadsPerCore: t.vcpus > 1 ? 2 : 1,
      },
      memoryInfo: { sizeInMiB: t.memoryMiB },
      instanceStorageSupported: false,
      ebsInfo: { ebsOptimizedSupport: 'default', encryptionSupport: 'supported' },
      networkInfo: { networkPerformance: 'Up to 10 Gigabit', maximumNetworkInterfaces: 3 },
    })),
    nextToken,
  };
};
