import {
  DescribeAvailabilityZonesCommand,
  DescribeInstanceTypesCommand,
  DescribeRegionsCommand,
} from '@aws-sdk/client-ec2';
import type { InstanceType, Quota, Region } from '../provider.js';
import type { Ec2Context } from './ec2.js';

/** What EC2 offers: regions with their zones, instance types, and (from a plugged-in source) the vCPU quota. */
export class AwsOfferings {
  constructor(private readonly ctx: Ec2Context) {}

  async regions(): Promise<Region[]> {
    return this.ctx.call('regions', async () => {
      const { Regions = [] } = await this.ctx.client(this.ctx.options.region).send(new DescribeRegionsCommand({}));
      const names = Regions.map((r) => r.RegionName)
        .filter((n): n is string => !!n)
        .sort();
      return Promise.all(
        names.map(async (name) => {
          const { AvailabilityZones = [] } = await this.ctx
            .client(name)
            .send(
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
    return this.ctx.call('instanceTypes', async () => {
      const types: InstanceType[] = [];
      let NextToken: string | undefined;
      do {
        const page = await this.ctx
          .client(region)
          .send(new DescribeInstanceTypesCommand({ MaxResults: 100, NextToken }));
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
    if (!this.ctx.options.quotaSource) return null;
    return this.ctx.call('quota', () => this.ctx.options.quotaSource!(region));
  }
}
