import type { InstanceType, Quota, Region } from '../provider.js';
import { collect, type ArmContext } from './arm.js';

/** What Azure offers: regions with their zones (from the VM SKUs), VM sizes, and the regional vCPU quota. */
export class AzureOfferings {
  private regionsCache: { at: number; regions: Region[] } | null = null;

  constructor(private readonly arm: ArmContext) {}

  async regions(): Promise<Region[]> {
    // The SKU list is large and changes rarely.
    if (this.regionsCache && Date.now() - this.regionsCache.at < 3_600_000) return this.regionsCache.regions;
    return this.arm.call('regions', async () => {
      const zonesByRegion = new Map<string, Set<string>>();
      for await (const sku of this.arm.compute.resourceSkus.list()) {
        if (sku.resourceType !== 'virtualMachines') continue;
        for (const info of sku.locationInfo ?? []) {
          if (!info.location) continue;
          const name = info.location.toLowerCase();
          const zones = zonesByRegion.get(name) ?? new Set<string>();
          for (const zone of info.zones ?? []) zones.add(zone);
          zonesByRegion.set(name, zones);
        }
      }
      const regions = [...zonesByRegion]
        .map(([name, zones]) => ({ name, zones: [...zones].sort() }))
        .sort((a, b) => a.name.localeCompare(b.name));
      this.regionsCache = { at: Date.now(), regions };
      return regions;
    });
  }

  async instanceTypes(region: string): Promise<InstanceType[]> {
    return this.arm.call('instanceTypes', async () => {
      const sizes = await collect(this.arm.compute.virtualMachineSizes.list(region));
      return sizes
        .filter((s) => s.name && s.numberOfCores && s.memoryInMB)
        .map((s) => ({ name: s.name!, vcpus: s.numberOfCores!, memoryMiB: s.memoryInMB! }))
        .sort((a, b) => a.vcpus - b.vcpus || a.memoryMiB - b.memoryMiB || a.name.localeCompare(b.name));
    });
  }

  async quota(region: string): Promise<Quota | null> {
    return this.arm.call('quota', async () => {
      for await (const usage of this.arm.compute.usage.list(region)) {
        // "Total Regional vCPUs": the limit that "exceeding approved Total Regional Cores quota" names.
        if (usage.name.value === 'cores') return { region, vcpuLimit: usage.limit, vcpuUsed: usage.currentValue };
      }
      return null;
    });
  }
}
